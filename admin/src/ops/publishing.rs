//! Publishing after a change: what the caller wants ([`Publishing`]), what happened
//! ([`ChangePublish`]), and the push with its audit entry, shared with `pat-admin publish`
//! ([`push`]).
//!
//! From a change's point of view publishing cannot fail: the change is committed and signed
//! (the origin hands it to edges that fetch) before anything is pushed, so whatever goes
//! wrong while pushing is said in [`ChangePublish::error`], never returned as an error.
//!
//! # Layout
//! - [`Publishing`], [`PublishEvent`]: skip or push, timeouts, the runtime to push on, a
//!   watcher told of the push as it goes.
//! - [`PublishState`], [`ChangePublish`]: a change's publish result, part of its JSON.
//! - [`Ops::publish_change`]: publishing one change; [`push`]: one push and its audit
//!   entry; [`timeouts`]: the push timeouts from flags, environment and settings.

use serde::Serialize;

use super::Ops;
use crate::error::{Error, Result};
use crate::publish::{self, EdgeResult, Timeouts};
use crate::settings;
use crate::store::snapshots::{Published, Stamp};
use crate::store::{Store, audit, edges as edge_store};

/// What a change did about publishing.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PublishState {
    /// Every configured edge has it.
    Published,
    /// At least one edge did not accept it (exit 6), or pushing failed ([`ChangePublish::error`]).
    NotAccepted,
    /// `--no-publish`.
    Skipped,
    /// No edges are configured.
    NoEdges,
    /// No signing key: nothing was signed or pushed (exit 7 when edges are configured).
    Unsigned,
}

/// A change's publish result, part of its JSON (CLI and API alike).
#[derive(Debug, Clone, Serialize)]
pub struct ChangePublish {
    /// What happened.
    pub state: PublishState,
    /// The snapshot version that includes the change (`null`: none was signed).
    pub version: Option<u64>,
    /// Per edge (empty when nothing was pushed).
    pub edges: Vec<EdgeResult>,
    /// Why pushing failed as a whole (the change stands: it is committed and signed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether edges are configured (an unsigned change leaves them waiting: the CLI's
    /// exit 7).
    #[serde(skip)]
    pub edges_configured: bool,
}

impl ChangePublish {
    /// Nothing was pushed: `state`, with the change's version if it was signed.
    pub fn unpushed(state: PublishState, version: Option<u64>) -> Self {
        Self {
            state,
            version,
            edges: Vec::new(),
            error: None,
            edges_configured: false,
        }
    }

    /// A push's per-edge results.
    fn pushed(version: u64, edges: Vec<EdgeResult>) -> Self {
        let failed = edges.iter().any(|e| !e.outcome.is_ok());
        Self {
            state: if failed {
                PublishState::NotAccepted
            } else {
                PublishState::Published
            },
            version: Some(version),
            edges,
            error: None,
            edges_configured: true,
        }
    }

    /// Pushing failed as a whole.
    fn failed(error: &Error) -> Self {
        Self {
            state: PublishState::NotAccepted,
            version: None,
            edges: Vec::new(),
            error: Some(error.to_string()),
            edges_configured: true,
        }
    }

    /// How many edges did not accept it.
    pub fn failed_edges(&self) -> usize {
        self.edges.iter().filter(|e| !e.outcome.is_ok()).count()
    }
}

/// What happens while a document is pushed, for a front end that shows it.
#[derive(Debug)]
pub enum PublishEvent<'e> {
    /// The push starts: the document, its size, the edges and the timeouts.
    Start {
        /// The document's metadata.
        stamp: &'e Stamp,
        /// Its size in bytes.
        bytes: usize,
        /// The edges it goes to (may be empty: `pat-admin publish` with no edges).
        edges: &'e [String],
        /// The timeouts.
        timeouts: Timeouts,
    },
    /// One edge is finished (the others may still be going).
    Edge(&'e EdgeResult),
    /// Every edge is finished.
    Done,
}

/// A watcher of a push.
type Watcher<'a> = Box<dyn FnMut(PublishEvent<'_>) + 'a>;

/// How to publish a change.
pub struct Publishing<'a> {
    skip: bool,
    attempt: Option<f64>,
    deadline: Option<f64>,
    timeouts: Option<Timeouts>,
    runtime: Option<tokio::runtime::Handle>,
    watcher: Option<Watcher<'a>>,
}

impl<'a> Publishing<'a> {
    /// Push to every configured edge with the configured timeouts (`push-timeout`,
    /// `push-deadline`, or the environment's), on a runtime of its own, telling nobody.
    pub fn quiet() -> Self {
        Self {
            skip: false,
            attempt: None,
            deadline: None,
            timeouts: None,
            runtime: None,
            watcher: None,
        }
    }

    /// Do not push (`--no-publish`): the change is signed, edges fetch it from the origin.
    pub fn skip(mut self, skip: bool) -> Self {
        self.skip = skip;
        self
    }

    /// The command line's `--timeout` / `--deadline` (seconds), when given: they win over
    /// the environment and the settings. Checked when a push is due.
    pub fn flags(mut self, attempt: Option<f64>, deadline: Option<f64>) -> Self {
        self.attempt = attempt;
        self.deadline = deadline;
        self
    }

    /// These timeouts, whatever the flags, environment and settings say.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = Some(timeouts);
        self
    }

    /// Push on this runtime (the API's own; the call blocks on it, so make it from a
    /// blocking thread).
    pub fn on(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Tell `watcher` of the push as it goes.
    pub fn watched(mut self, watcher: impl FnMut(PublishEvent<'_>) + 'a) -> Self {
        self.watcher = Some(Box::new(watcher));
        self
    }

    fn tell(&mut self, event: PublishEvent<'_>) {
        if let Some(watcher) = &mut self.watcher {
            watcher(event);
        }
    }

    fn resolve_timeouts(&self, conn: &crate::store::db::Connection) -> Result<Timeouts> {
        match self.timeouts {
            Some(t) => Ok(t),
            None => timeouts(conn, self.attempt, self.deadline),
        }
    }
}

impl Ops<'_> {
    /// Step 5 of every change: publishes the document its transaction signed (`built`) as
    /// `publishing` says. Never fails: what went wrong is in the result.
    pub(super) fn publish_change(
        &mut self,
        built: Option<Published>,
        mut publishing: Publishing<'_>,
    ) -> ChangePublish {
        let version = built.as_ref().map(|p| p.stamp.version);
        if publishing.skip {
            return ChangePublish::unpushed(PublishState::Skipped, version);
        }
        let edges = match edge_store::list(self.store.conn()) {
            Ok(edges) => edges,
            Err(e) => return ChangePublish::failed(&e),
        };
        let Some(published) = built else {
            let mut result = ChangePublish::unpushed(PublishState::Unsigned, None);
            result.edges_configured = !edges.is_empty();
            return result;
        };
        if edges.is_empty() {
            return ChangePublish::unpushed(PublishState::NoEdges, version);
        }
        let version = published.stamp.version;
        match push(self.store, &edges, published, &mut publishing) {
            Ok(results) => ChangePublish::pushed(version, results),
            Err(e) => ChangePublish::failed(&e),
        }
    }
}

/// Pushes `published` to `edges` (with the catch-up for an edge that lags) as `publishing`
/// says, telling its watcher as it goes, and records the push in the audit log (also when
/// there are no edges: `pat-admin publish` signed a document all the same).
pub fn push(
    store: &mut Store,
    edges: &[String],
    published: Published,
    publishing: &mut Publishing<'_>,
) -> Result<Vec<EdgeResult>> {
    let timeouts = publishing.resolve_timeouts(store.conn())?;
    let stamp = published.stamp;
    publishing.tell(PublishEvent::Start {
        stamp: &stamp,
        bytes: published.bytes.len(),
        edges,
        timeouts,
    });
    let results = if edges.is_empty() {
        Vec::new()
    } else {
        let catch_up = publish::CatchUp::new(store.location().clone());
        let owned;
        let handle = match &publishing.runtime {
            Some(handle) => handle.clone(),
            None => {
                owned = runtime()?;
                owned.handle().clone()
            }
        };
        let watcher = &mut publishing.watcher;
        let results = handle.block_on(publish::push_all(
            edges,
            published.bytes,
            stamp.version,
            Some(catch_up),
            timeouts,
            |result| {
                if let Some(watcher) = watcher {
                    watcher(PublishEvent::Edge(result));
                }
            },
        ));
        publishing.tell(PublishEvent::Done);
        results?
    };
    record_publish(store, stamp.version, &results)?;
    Ok(results)
}

/// A small multi-threaded runtime for pushes and the platform's calls on the command line.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
}

/// The audit entry of a push.
fn record_publish(store: &mut Store, version: u64, results: &[EdgeResult]) -> Result<()> {
    let summary = results
        .iter()
        .map(|r| format!("{} {}", r.edge, r.outcome.word()))
        .collect::<Vec<_>>()
        .join(", ");
    store.write(|tx| {
        audit::record(
            tx,
            None,
            "publish",
            None,
            &format!("version {version}: {summary}"),
        )
    })
}

/// The push timeouts: `attempt`/`deadline` when given (command-line flags), else
/// `PAT_ADMIN_PUSH_TIMEOUT` / `PAT_ADMIN_PUSH_DEADLINE` (seconds), else the settings
/// `push-timeout` / `push-deadline`, else 10 s / 30 s ([`settings::PUSH_TIMEOUT`],
/// [`settings::PUSH_DEADLINE`]).
pub fn timeouts(
    conn: &crate::store::db::Connection,
    attempt: Option<f64>,
    deadline: Option<f64>,
) -> Result<Timeouts> {
    let attempt = settings::PUSH_TIMEOUT.resolve(conn, attempt)?;
    let deadline = settings::PUSH_DEADLINE.resolve(conn, deadline)?;
    let mut timeouts = Timeouts::default().with_attempt(attempt);
    timeouts.deadline = deadline;
    Ok(timeouts)
}
