//! `pat-admin`: the operator side of pat-edge. Accounts, password-confirmed token changes,
//! the API method catalogue, signing keys, and publishing signed snapshots to the edges.
//!
//! The token format, the snapshot format and signatures come from `pat-core`, the same code
//! the Envoy filter runs, so the two sides cannot drift.
//!
//! # Layout
//! - [`cli`]: the command line (clap): the contract scripts rely on.
//! - [`clock`]: where every "now" comes from (the system clock; a manual one for tests; a
//!   shifted one for the binary in tests, `test-clock` builds only).
//! - [`commands`]: one module per command group, sharing a context (store, catalogue, output).
//! - [`ops`]: the operations, one call per change (create, copy, regenerate, edit, remove,
//!   revoke leaked values, account changes) that checks, confirms the password, commits,
//!   signs, publishes and records, shared by the CLI and the API; the checked parameters
//!   they take (descriptions, scopes, expiries, allowed client networks, grace windows).
//! - [`attempts`]: every password check: one at a time per account and client address,
//!   the back-off, the record of each result.
//! - [`settings`]: the operator's settings, one definition each (name, stored key,
//!   default, range, help), read by `config`, the store and the operations.
//! - [`store`]: the store on SQLite (one host: WAL, immediate transactions, 0600/0700) or
//!   PostgreSQL (several `serve` replicas: one write lock, sealed keys), one query API over
//!   both ([`store::db`]), its tables, `store copy`.
//! - [`password`]: argon2id hashes, prompts / `--password-stdin`, the failure delay.
//! - [`catalogue`]: the built-in platform API catalogue, set lookup, "did you mean".
//! - [`expiry`]: `DD-MM-YYYY` dates, valid through the end of the day in UTC.
//! - [`duration`]: `90m`, `24h`, `7d` durations (the snapshot lifetime, grace windows).
//! - [`snapshot`]: building and signing documents from the store: deltas, full snapshots,
//!   compactions.
//! - [`origin`]: what the origin hands out (the head, the full answer, catch-ups since a
//!   version), for `serve` and for `publish`'s catch-ups.
//! - [`publish`]: pushing to edges (concurrent, timeouts, bounded retries, a catch-up for an
//!   edge that lags) and asking them.
//! - [`usage`]: the edges' usage reports, verified and merged into "last used".
//! - [`serve`]: the snapshot origin (and usage reports) for edges, and the API's listener.
//! - [`health`]: `/healthz` on both listeners, for Envoy's health checks of the replicas.
//! - [`module`]: the filter's `.wasm` on the origin (`serve --module`), pinned by its SHA-256.
//! - [`platform`]: platform mode: the platform's sessions and passwords, checked by the
//!   platform (`GetUserInfo`, `Signin`/`Signout`, `CheckPassword`).
//! - [`api`]: the platform's token API (`users.Authentication`: Signin, CreateToken, …).
//! - [`output`]: stdout/stderr, JSON-only output with `--json`, colour on terminals only,
//!   a closed stdout ending the command quietly.
//! - [`error`]: typed errors and the documented exit codes.

pub mod api;
pub mod attempts;
pub mod catalogue;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod duration;
pub mod error;
pub mod expiry;
pub mod health;
pub mod module;
pub mod ops;
pub mod origin;
pub mod output;
pub mod password;
pub mod platform;
pub mod publish;
pub mod serve;
pub mod settings;
pub mod snapshot;
pub mod store;
pub mod usage;
