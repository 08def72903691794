//! The operations in process: a store in a temporary directory (or a database of its own
//! on the PostgreSQL run, as every admin test), an account and a signing
//! key made with the store's own functions, and every change made by calling [`Ops`]
//! directly (no binary): create, edit, regenerate with a grace window, copy, remove,
//! revoke-leaked; a wrong password changes nothing and is audited; a disabled account is
//! refused; publishing with no edges, and publishing that fails with the change committed.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::time::Duration;

use pat_admin::catalogue::Catalogue;
use pat_admin::error::Error;
use pat_admin::ops::{
    Actor, Confirmation, CopyOf, Description, Edit, Leaked, Networks, NewToken, Ops, PublishState,
    Publishing, Regeneration, Scope, Selection, value_id,
};
use pat_admin::publish::Timeouts;
use pat_admin::store::{Open, Store, audit, edges, keys, tokens, users};
use pat_core::keys::SigningKey;
use pat_core::token::{TokenHash, mask};

/// The current time, Unix seconds (the system clock, as pat-admin reads it).
fn now() -> u64 {
    pat_admin::clock::Clock::system().now()
}

mod support;

const PASSWORD: &str = "correct horse battery";
const STOPENV: &str = "environment.Control.StopEnv";

/// A store with account `alice` (password [`PASSWORD`]) and, with `key`, an active signing
/// key.
struct Setup {
    _admin: support::Admin,
    store: Store,
    catalogue: &'static Catalogue,
    alice: Actor,
}

fn setup(key: bool) -> Setup {
    let admin = support::Admin::new();
    let mut store = Store::open_as(admin.location(), Open::Create).expect("store");
    let hash = pat_admin::password::hash(PASSWORD).expect("hash");
    store
        .write(|tx| users::add(tx, "alice", &hash, now()))
        .expect("alice");
    if key {
        add_key(&mut store);
    }
    let alice = Actor::cli(&store, "alice").expect("actor");
    Setup {
        _admin: admin,
        store,
        catalogue: Catalogue::builtin().expect("catalogue"),
        alice,
    }
}

/// An active signing key, as `key generate` makes one: a key file on SQLite, sealed in the
/// store on PostgreSQL.
fn add_key(store: &mut Store) {
    let secret = SigningKey::generate().expect("key");
    let id = secret.public_key().id().to_string();
    let (file, sealed) = match store.dir() {
        Some(store_dir) => {
            let dir = store_dir.join(pat_admin::store::KEYS_DIR);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .expect("keys dir");
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dir.join(format!("{id}.key")))
                .expect("key file");
            file.write_all(secret.to_secret_text().as_bytes())
                .expect("written");
            (format!("keys/{id}.key"), None)
        }
        None => {
            let sealer = pat_admin::store::sealed::Sealer::from_env()
                .expect("the PostgreSQL run sets PAT_ADMIN_KEY_SECRET");
            (
                String::new(),
                Some(sealer.seal(&id, &secret.to_secret_text()).expect("sealed")),
            )
        }
    };
    let row = keys::Key {
        id: id.clone(),
        public_key: secret.public_key().to_string(),
        file,
        sealed,
        created_at: now(),
        active: true,
    };
    store.write(|tx| keys::add(tx, &row)).expect("key row");
}

impl Setup {
    fn ops(&mut self) -> Ops<'_> {
        Ops::new(&mut self.store, self.catalogue)
    }

    fn new_token(&mut self, description: &str) -> NewToken {
        let expiry = self.ops().expiry_day(None).expect("no expiry");
        NewToken::new(
            Description::parse(description).expect("description"),
            Scope::methods(self.catalogue, &[STOPENV]).expect("scope"),
            expiry,
        )
    }

    /// A token made with `ops.create`: its id and value.
    fn create(&mut self, description: &str) -> (i64, String) {
        let new = self.new_token(description);
        let actor = self.alice.clone();
        let done = self
            .ops()
            .create(
                &actor,
                new,
                Confirmation::password(PASSWORD),
                Publishing::quiet(),
                |_| Ok(()),
            )
            .expect("created");
        (
            done.outcome.token.id,
            done.outcome.value.expose().to_string(),
        )
    }

    fn audit(&self, action: &str) -> Vec<audit::Entry> {
        audit::list(self.store.conn(), None, 1000)
            .expect("audit")
            .into_iter()
            .filter(|e| e.action == action)
            .collect()
    }

    fn tokens(&self) -> Vec<tokens::Token> {
        tokens::list(self.store.conn(), "alice").expect("tokens")
    }
}

#[test]
fn create_commits_tells_committed_then_publishes_to_no_edges() {
    let mut s = setup(true);
    let new = s.new_token("ci");
    let actor = s.alice.clone();
    let mut seen = None;
    let done = s
        .ops()
        .create(
            &actor,
            new,
            Confirmation::password(PASSWORD),
            Publishing::quiet(),
            |issued| {
                seen = Some(issued.token.id);
                Ok(())
            },
        )
        .expect("created");
    assert_eq!(seen, Some(done.outcome.token.id), "told before publishing");
    let publish = done.publish.expect("published");
    assert_eq!(publish.state, PublishState::NoEdges);
    assert!(
        publish.version.is_some(),
        "signed in the change's transaction"
    );
    assert!(publish.error.is_none());
    let rows = s.tokens();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].hash, TokenHash::of(done.outcome.value.expose()));
    let entries = s.audit("token.generate");
    assert_eq!(entries.len(), 1);
    assert!(
        !entries[0].detail.contains(done.outcome.value.expose()),
        "never the value"
    );
}

#[test]
fn without_a_key_the_change_is_saved_unsigned() {
    let mut s = setup(false);
    let new = s.new_token("ci");
    let actor = s.alice.clone();
    let done = s
        .ops()
        .create(
            &actor,
            new,
            Confirmation::password(PASSWORD),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .expect("created");
    let publish = done.publish.expect("publish result");
    assert_eq!(
        (publish.state, publish.version, publish.edges_configured),
        (PublishState::Unsigned, None, false)
    );
    assert_eq!(s.tokens().len(), 1);
}

#[test]
fn a_wrong_password_changes_nothing_and_is_audited() {
    let mut s = setup(true);
    let new = s.new_token("ci");
    let actor = s.alice.clone();
    let mut told = false;
    let err = s
        .ops()
        .create(
            &actor,
            new,
            Confirmation::password("guess"),
            Publishing::quiet(),
            |_| {
                told = true;
                Ok(())
            },
        )
        .err()
        .expect("refused");
    assert!(
        matches!(err, Error::WrongPassword(ref a) if a == "alice"),
        "{err}"
    );
    assert!(!told);
    assert!(s.tokens().is_empty());
    assert!(s.audit("token.generate").is_empty());
    let failures = s.audit("auth.failed");
    assert_eq!(failures.len(), 1, "the failure is audited once");
    assert_eq!(failures[0].account.as_deref(), Some("alice"));
    assert!(!failures[0].detail.contains("guess"), "never the password");
}

#[test]
fn the_password_is_read_only_once_the_request_is_checked() {
    let mut s = setup(true);
    let actor = s.alice.clone();
    let mut asked = false;
    let err = s
        .ops()
        .regenerate_token(
            &actor,
            Regeneration {
                id: 99,
                expires_at: None,
                grace: None,
            },
            Confirmation::ask(|_| {
                asked = true;
                Ok(PASSWORD.to_string().into())
            }),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .err()
        .expect("no such token");
    assert!(matches!(err, Error::NoSuchToken { id: 99, .. }), "{err}");
    assert!(!asked, "a missing token costs no password");
}

#[test]
fn a_disabled_account_is_refused_before_anything_changes() {
    let mut s = setup(true);
    let (id, _) = s.create("ci");
    let switched = s
        .ops()
        .switch_account(
            "operator",
            "alice",
            Some(users::Disabled {
                at: now(),
                by: users::DisabledBy::Operator,
                reason: "left".into(),
            }),
            Publishing::quiet(),
        )
        .expect("disabled");
    assert_eq!(switched.outcome.tokens, 1);
    assert_eq!(
        switched.publish.expect("published").state,
        PublishState::NoEdges
    );
    let actor = s.alice.clone();
    let err = s
        .ops()
        .remove_tokens(
            &actor,
            Selection::Ids(vec![id]),
            Confirmation::password(PASSWORD),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .expect_err("refused");
    assert!(matches!(err, Error::AccountDisabled { .. }), "{err}");
    assert_eq!(s.tokens().len(), 1);
    assert!(s.audit("token.remove").is_empty());
}

#[test]
fn edit_changes_once_and_an_edit_to_the_same_values_needs_no_password() {
    let mut s = setup(true);
    let (id, _) = s.create("ci");
    let actor = s.alice.clone();
    let edit = Edit {
        description: Some(Description::parse("deploys").expect("description")),
        networks: Some(Networks::parse(&["203.0.113.0/24"], "--allow-ip").expect("networks")),
        ..Edit::default()
    };
    let done = s
        .ops()
        .edit_token(
            &actor,
            id,
            &edit,
            Confirmation::password(PASSWORD),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .expect("edited");
    assert!(done.outcome.changed);
    assert_eq!(done.outcome.token.description, "deploys");
    assert!(done.publish.is_some());
    let again = s
        .ops()
        .edit_token(
            &actor,
            id,
            &edit,
            Confirmation::ask(|_| Err(Error::Invalid("no password here".into()))),
            Publishing::quiet(),
            |_| panic!("nothing committed"),
        )
        .expect("unchanged");
    assert!(!again.outcome.changed);
    assert!(again.publish.is_none());
    // The API's confirmation checks the password even then.
    let err = s
        .ops()
        .edit_token(
            &actor,
            id,
            &edit,
            Confirmation::password("guess").even_if_unchanged(),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .expect_err("wrong password");
    assert!(matches!(err, Error::WrongPassword(_)), "{err}");
    assert_eq!(s.audit("token.edit").len(), 1);
}

#[test]
fn regenerate_with_grace_keeps_the_old_value_and_copy_keeps_the_parameters() {
    let mut s = setup(true);
    let (id, old) = s.create("ci");
    let actor = s.alice.clone();
    let done = s
        .ops()
        .regenerate_token(
            &actor,
            Regeneration {
                id,
                expires_at: None,
                grace: Some("1h"),
            },
            Confirmation::password(PASSWORD),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .expect("regenerated");
    let new = done.outcome.value.expose().to_string();
    let row = &done.outcome.token;
    let until = row.old_value_until(now()).expect("old value works");
    assert!(until > now() + 3500 && until <= now() + 3600, "{until}");
    assert_eq!(row.hash, TokenHash::of(&new));
    let entry = &s.audit("token.regenerate")[0];
    assert!(
        entry.detail.starts_with(&format!(
            "value {} replaced by {}; the old value works until",
            value_id(&TokenHash::of(&old)),
            value_id(&TokenHash::of(&new))
        )),
        "{}",
        entry.detail
    );
    // A grace window longer than max-grace is refused before the password.
    let err = s
        .ops()
        .regenerate_token(
            &actor,
            Regeneration {
                id,
                expires_at: None,
                grace: Some("60d"),
            },
            Confirmation::ask(|_| panic!("not asked")),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .err()
        .expect("refused");
    assert!(matches!(err, Error::Refused(_)), "{err}");
    let copied = s
        .ops()
        .copy_token(
            &actor,
            CopyOf {
                id,
                description: None,
                expires_at: None,
                envs: None,
                rate: None,
            },
            Confirmation::password(PASSWORD),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .expect("copied");
    let copy = &copied.outcome.token;
    assert_ne!(copy.id, id);
    assert_eq!(
        (copy.description.as_str(), copy.methods.clone()),
        (
            "ci",
            Scope::methods(s.catalogue, &[STOPENV])
                .expect("scope")
                .method_names()
                .to_vec()
        )
    );
    assert!(copy.old_value.is_none(), "a copy has one value");
    assert_eq!(
        s.audit("token.copy")[0].detail,
        format!("copy of {id}; {}", pat_admin::ops::describe(copy))
    );
}

#[test]
fn remove_and_revoke_leaked_name_the_old_value_that_stops_working() {
    let mut s = setup(true);
    let (first, _) = s.create("one");
    let (second, _) = s.create("two");
    let actor = s.alice.clone();
    let mut values = Vec::new();
    for id in [first, second] {
        let done = s
            .ops()
            .regenerate_token(
                &actor,
                Regeneration {
                    id,
                    expires_at: None,
                    grace: Some("1h"),
                },
                Confirmation::password(PASSWORD),
                Publishing::quiet(),
                |_| Ok(()),
            )
            .expect("regenerated");
        values.push((
            done.outcome.value.expose().to_string(),
            done.outcome.token.old_value.expect("old").hash,
        ));
    }
    let removed = s
        .ops()
        .remove_tokens(
            &actor,
            Selection::Ids(vec![first]),
            Confirmation::password(PASSWORD),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .expect("removed");
    assert_eq!(removed.outcome.ids, [first]);
    let remove = &s.audit("token.remove")[0];
    assert!(
        remove.detail.starts_with(&format!(
            "removed; its old value {} (until ",
            value_id(&values[0].1)
        )),
        "{}",
        remove.detail
    );
    // An account's password is no confirmation for the operator's revocation.
    let leaked = Leaked {
        masked: mask(&values[1].0),
        hash: TokenHash::of(&values[1].0),
    };
    let refused = s.ops().revoke_leaked(
        std::slice::from_ref(&leaked),
        "scanner",
        Confirmation::password(PASSWORD),
        Publishing::quiet(),
        |_| Ok(()),
    );
    assert!(matches!(refused, Err(Error::Internal(_))));
    let unknown = Leaked {
        masked: "pate_…0000".into(),
        hash: TokenHash::of("pate_unknown"),
    };
    let done = s
        .ops()
        .revoke_leaked(
            &[leaked.clone(), unknown],
            "scanner",
            Confirmation::operator(),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .expect("revoked");
    assert_eq!(done.outcome.revoked.len(), 1);
    assert_eq!(done.outcome.revoked[0].id, second);
    assert_eq!(done.outcome.unknown, ["pate_…0000"]);
    assert_eq!(
        done.publish.expect("published").state,
        PublishState::NoEdges
    );
    let revoke = &s.audit("token.revoke-leaked")[0];
    assert_eq!(revoke.token_id, Some(second));
    assert!(
        revoke.detail.starts_with(&format!(
            "leaked value {}; reason: scanner; its old value {} (until ",
            leaked.masked,
            value_id(&values[1].1)
        )),
        "{}",
        revoke.detail
    );
    assert!(s.tokens().is_empty());
    // Nothing left to revoke: not found, nothing changed.
    let again = s.ops().revoke_leaked(
        &[leaked],
        "scanner",
        Confirmation::operator(),
        Publishing::quiet(),
        |_| Ok(()),
    );
    assert!(matches!(again, Err(Error::NotFound(_))));
}

#[test]
fn a_publishing_failure_is_recorded_and_the_change_stands() {
    let mut s = setup(true);
    // An edge no push can reach: nothing listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    s.store
        .write(|tx| edges::add(tx, &format!("http://127.0.0.1:{port}"), now()))
        .expect("edge");
    let new = s.new_token("ci");
    let actor = s.alice.clone();
    let quick = Timeouts::default().with_attempt(Duration::from_millis(200));
    let mut watched = Vec::new();
    let done = s
        .ops()
        .create(
            &actor,
            new,
            Confirmation::password(PASSWORD),
            Publishing::quiet()
                .timeouts(Timeouts {
                    deadline: Duration::from_millis(600),
                    ..quick
                })
                .watched(|event| watched.push(format!("{event:?}"))),
            |_| Ok(()),
        )
        .expect("the change stands");
    let publish = done.publish.expect("publish result");
    assert_eq!(publish.state, PublishState::NotAccepted);
    assert_eq!(publish.edges.len(), 1);
    assert!(!publish.edges[0].outcome.is_ok());
    assert_eq!(s.tokens().len(), 1, "committed all the same");
    assert_eq!(s.audit("publish").len(), 1, "the push is audited");
    assert_eq!(watched.len(), 3, "start, the edge, done: {watched:?}");

    // A push that fails as a whole (an edge address no push can use) is said in `error`.
    s.store
        .write(|tx| edges::add(tx, "not a url", now()))
        .expect("edge");
    let new = s.new_token("second");
    let done = s
        .ops()
        .create(
            &actor,
            new,
            Confirmation::password(PASSWORD),
            Publishing::quiet(),
            |_| Ok(()),
        )
        .expect("the change stands");
    let publish = done.publish.expect("publish result");
    assert_eq!(publish.state, PublishState::NotAccepted);
    assert!(publish.error.is_some(), "{publish:?}");
    let json = serde_json::to_value(&publish).expect("json");
    assert_eq!(
        json["error"],
        publish.error.clone().expect("error").as_str()
    );
    assert_eq!(s.tokens().len(), 2);
    // Skipped: nothing pushed, nothing audited.
    let new = s.new_token("third");
    let done = s
        .ops()
        .create(
            &actor,
            new,
            Confirmation::password(PASSWORD),
            Publishing::quiet().skip(true),
            |_| Ok(()),
        )
        .expect("created");
    assert_eq!(
        done.publish.expect("publish result").state,
        PublishState::Skipped
    );
    assert_eq!(s.audit("publish").len(), 1);
}
