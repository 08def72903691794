//! A few open connections to one store, reused by `serve`'s handlers: the token API's, and
//! the origin's and health checks' read-only ones. Every edge asks the origin for its head
//! every few seconds; on PostgreSQL a new connection per request would be a TCP (and TLS)
//! handshake, an authentication and a schema check each time.
//!
//! A connection is borrowed with [`Pool::get`] and returned when the [`Pooled`] guard drops,
//! unless PostgreSQL closed it (a restart): the next borrower opens a new one. At most
//! `max_idle` wait to be reused; more may be open at once while requests run.
//! [`readers_to_keep`]: read-only connections are kept on PostgreSQL only; opening a SQLite
//! file costs microseconds, and a fresh open notices a database file moved or deleted under
//! the server (the health check's job), which an open connection would not.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

use super::Store;
use crate::error::Result;

/// How many idle read-only connections to keep for a store on `engine`.
pub fn readers_to_keep(engine: super::db::Engine, on_postgres: usize) -> usize {
    match engine {
        super::db::Engine::Postgres => on_postgres,
        super::db::Engine::Sqlite => 0,
    }
}

/// How a pool opens a connection.
type Opener = Box<dyn Fn() -> Result<Store> + Send + Sync>;

/// Open connections to one store.
pub struct Pool {
    open: Opener,
    idle: Mutex<Vec<Store>>,
    max_idle: usize,
}

impl Pool {
    /// A pool that opens connections with `open` and keeps up to `max_idle` of them.
    pub fn new(max_idle: usize, open: impl Fn() -> Result<Store> + Send + Sync + 'static) -> Self {
        Self {
            open: Box::new(open),
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    /// An idle connection, or a new one.
    pub fn get(&self) -> Result<Pooled<'_>> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let store = match idle {
            Some(store) => store,
            None => (self.open)()?,
        };
        Ok(Pooled {
            pool: self,
            store: Some(store),
        })
    }

    /// Connections waiting to be reused.
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }
}

/// A borrowed connection; back to its pool when dropped.
pub struct Pooled<'a> {
    pool: &'a Pool,
    store: Option<Store>,
}

impl Pooled<'_> {
    /// The store.
    pub fn get(&mut self) -> &mut Store {
        self
    }
}

impl Deref for Pooled<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        // Always `Some` until `drop` takes it.
        self.store
            .as_ref()
            .unwrap_or_else(|| unreachable!("held until dropped"))
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        self.store
            .as_mut()
            .unwrap_or_else(|| unreachable!("held until dropped"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(store) = self.store.take()
            && !store.conn().is_closed()
            && let Ok(mut idle) = self.pool.idle.lock()
            && idle.len() < self.pool.max_idle
        {
            idle.push(store);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn connections_are_reused_up_to_the_idle_limit() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path()).unwrap();
        let opened = Arc::new(AtomicUsize::new(0));
        let counter = opened.clone();
        let location = dir.path().to_path_buf();
        let pool = Pool::new(2, move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Store::open_reader(&(&location).into())
        });
        for _ in 0..5 {
            let mut store = pool.get().unwrap();
            store.get().read(|_| Ok(())).unwrap();
        }
        assert_eq!(opened.load(Ordering::SeqCst), 1, "one connection, reused");
        let held: Vec<_> = (0..3).map(|_| pool.get().unwrap()).collect();
        assert_eq!(opened.load(Ordering::SeqCst), 3);
        drop(held);
        assert_eq!(pool.idle(), 2, "at most two kept");
    }
}
