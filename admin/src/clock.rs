//! The time pat-admin reads: every "now" of the store, the operations, the token API and
//! `serve` comes from a [`Clock`], which the store's connection carries
//! ([`crate::store::db::Connection::now`], [`crate::store::Store::clock`]), so one clock
//! governs a whole change: the token rows it writes, the document it signs and the audit
//! entry it records.
//!
//! - [`Clock::system`]: the system clock (Unix time), what every command and `serve` use.
//! - [`ManualClock`]: a clock a test sets and advances itself (in-process tests of the
//!   store and the operations: expiry, grace windows, re-signing without waiting).
//!
//! Not from it: real waits and their limits, which must pass in real time whatever the
//! clock says — push timeouts and deadlines ([`crate::publish`]), the platform's session
//! cache, the password back-off ([`crate::attempts`] sleeps it), `serve`'s interval between
//! checks (`--check-every`). They use [`std::time::Instant`] and sleeps.
//!
//! # Shifting the binary's clock in tests (`test-clock` feature)
//!
//! The integration tests run the real `pat-admin` binary, often a `serve` that re-signs and
//! compacts on its own: to see a snapshot a quarter into its lifetime or a grace window
//! ended, they must move that process's time while it runs. With the `test-clock` cargo
//! feature, [`Clock::system`] adds an offset in seconds (a signed integer, e.g. `15`) read
//! from the file named by `PAT_ADMIN_TEST_CLOCK_FILE` on every reading of the time; a
//! missing file is an offset of 0. Tests write the file (atomically, by a rename), and every
//! pat-admin process of the test (commands, `serve`, its re-signer) sees the new time at
//! once.
//!
//! Why a file and a feature:
//! - a file, not an environment variable: a running `serve` cannot see a change to its
//!   environment, and the tests must advance time under a running `serve`;
//! - a cargo feature, not debug builds: a build without it has no code that reads the
//!   variable at all (the offset source is compiled out), whatever the build profile or
//!   `debug-assertions` setting, so no environment can shift a production clock (a build
//!   without the feature only warns, once, that the variable is ignored). `pat-admin`'s own
//!   tests turn it on through a dev-dependency on the crate itself, so `cargo test -p
//!   pat-admin` builds the binary they spawn with it, and `cargo build` (any profile) does
//!   not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The variable naming the test clock's offset file (`test-clock` builds only).
pub const TEST_CLOCK_FILE_VAR: &str = "PAT_ADMIN_TEST_CLOCK_FILE";

/// Where pat-admin reads the time. Cheap to clone (at most an [`Arc`]).
#[derive(Debug, Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
    /// The system clock.
    System,
    /// The system clock plus the offset in a file (`test-clock` builds only).
    #[cfg(feature = "test-clock")]
    Shifted(Arc<std::path::PathBuf>),
    /// A [`ManualClock`]'s time, Unix milliseconds.
    Manual(Arc<AtomicU64>),
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system clock; in a `test-clock` build, shifted by the offset in the file named by
    /// `PAT_ADMIN_TEST_CLOCK_FILE` when that is set (see the module documentation).
    pub fn system() -> Self {
        let Some(file) = std::env::var_os(TEST_CLOCK_FILE_VAR).filter(|f| !f.is_empty()) else {
            return Self {
                source: Source::System,
            };
        };
        #[cfg(feature = "test-clock")]
        {
            Self::shifted_by_file(file)
        }
        #[cfg(not(feature = "test-clock"))]
        {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "pat-admin: warning: {TEST_CLOCK_FILE_VAR}={} is ignored: this build has no test clock (the test-clock feature)",
                    std::path::Path::new(&file).display()
                );
            });
            Self {
                source: Source::System,
            }
        }
    }

    /// The system clock shifted by the offset in seconds `file` holds when it is read (none
    /// while it does not exist).
    #[cfg(feature = "test-clock")]
    pub fn shifted_by_file(file: impl Into<std::path::PathBuf>) -> Self {
        Self {
            source: Source::Shifted(Arc::new(file.into())),
        }
    }

    /// The current time, Unix seconds.
    pub fn now(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// The current time, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        match &self.source {
            Source::System => system_ms(),
            #[cfg(feature = "test-clock")]
            Source::Shifted(file) => {
                let offset_ms = read_offset(file).saturating_mul(1000);
                system_ms().saturating_add_signed(offset_ms)
            }
            Source::Manual(ms) => ms.load(Ordering::SeqCst),
        }
    }

    /// The current time as a UTC date and time (whole seconds), for dates: an expiry's
    /// "today".
    pub fn utc(&self) -> time::OffsetDateTime {
        i64::try_from(self.now())
            .ok()
            .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }

    /// Whether this is the plain system clock (neither shifted nor manual).
    pub fn is_system(&self) -> bool {
        matches!(self.source, Source::System)
    }
}

/// The system clock, Unix milliseconds (0 before 1970).
fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The offset the file holds, seconds; 0 while it does not exist. Anything but a whole
/// number is a broken test setup: a panic says so.
#[cfg(feature = "test-clock")]
fn read_offset(file: &std::path::Path) -> i64 {
    match std::fs::read_to_string(file) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            panic!(
                "{TEST_CLOCK_FILE_VAR} {}: {text:?} is not an offset in whole seconds",
                file.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => panic!("{TEST_CLOCK_FILE_VAR} {}: {e}", file.display()),
    }
}

/// A clock that stands still until it is set or advanced: for tests in one process. Its
/// [`ManualClock::clock`]s (given to a store with [`crate::store::Store::set_clock`]) all
/// read the time it holds.
#[derive(Debug, Clone)]
pub struct ManualClock {
    ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock standing at `secs` (Unix seconds).
    pub fn at(secs: u64) -> Self {
        Self {
            ms: Arc::new(AtomicU64::new(secs.saturating_mul(1000))),
        }
    }

    /// A clock standing at the system clock's current time.
    pub fn starting_now() -> Self {
        Self {
            ms: Arc::new(AtomicU64::new(system_ms())),
        }
    }

    /// A [`Clock`] reading this one's time.
    pub fn clock(&self) -> Clock {
        Clock {
            source: Source::Manual(self.ms.clone()),
        }
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ms| {
                Some(ms.saturating_add(by))
            });
    }

    /// Sets the time to `secs` (Unix seconds), forward or back.
    pub fn set(&self, secs: u64) {
        self.ms.store(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// The time it stands at, Unix seconds.
    pub fn now(&self) -> u64 {
        self.ms.load(Ordering::SeqCst) / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_is_unix_time() {
        let clock = Clock {
            source: Source::System,
        };
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        let now = clock.now();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        assert!(
            before <= now && now <= after,
            "{before} <= {now} <= {after}"
        );
        assert!(clock.is_system());
        assert_eq!(clock.now_ms() / 1000 / 10, now / 10, "ms and s agree");
    }

    #[test]
    fn a_manual_clock_stands_still_until_moved_and_every_copy_sees_it() {
        let manual = ManualClock::at(1_000);
        let (a, b) = (manual.clock(), manual.clock().clone());
        assert!(!a.is_system());
        assert_eq!((a.now(), a.now_ms()), (1_000, 1_000_000));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(a.now_ms(), 1_000_000, "no time passes by itself");
        manual.advance(Duration::from_millis(1_500));
        assert_eq!((a.now(), b.now_ms()), (1_001, 1_001_500));
        manual.advance(Duration::from_secs(15));
        assert_eq!((a.now(), b.now(), manual.now()), (1_016, 1_016, 1_016));
        assert_eq!(a.utc().unix_timestamp(), 1_016);
        manual.set(86_400 * 365);
        assert_eq!(a.utc().date().to_string(), "1971-01-01");
        manual.set(10);
        assert_eq!(b.now(), 10, "set goes back too");
        manual.advance(Duration::MAX);
        assert_eq!(a.now_ms(), u64::MAX, "saturates");
    }

    #[test]
    fn a_manual_clock_can_start_at_the_system_time() {
        let manual = ManualClock::starting_now();
        let system = Clock {
            source: Source::System,
        };
        assert!(system.now().abs_diff(manual.now()) <= 1);
    }

    #[cfg(feature = "test-clock")]
    #[test]
    fn a_shifted_clock_reads_its_offset_file_each_time() {
        let dir = std::env::temp_dir().join(format!(
            "pat-admin-clock-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("offset");
        let _ = std::fs::remove_file(&file);
        let clock = Clock::shifted_by_file(&file);
        assert!(!clock.is_system());
        let real = || system_ms() / 1000;
        assert!(clock.now().abs_diff(real()) <= 1, "no file: no offset");
        std::fs::write(&file, "3600\n").expect("write");
        assert!(clock.now().abs_diff(real() + 3600) <= 1, "an hour ahead");
        std::fs::write(&file, "-60").expect("write");
        assert!(clock.now().abs_diff(real() - 60) <= 1, "a minute behind");
        std::fs::write(&file, "soon").expect("write");
        let broken = std::panic::catch_unwind(|| clock.now());
        assert!(broken.is_err(), "a broken offset is not silently 0");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
