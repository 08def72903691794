//! TLS to PostgreSQL, from the store URL's `sslmode` and `sslrootcert` (libpq's names).
//!
//! | `sslmode` | what pat-admin does |
//! |---|---|
//! | absent, `prefer`, `allow` | TLS when the server offers it, plain when it does not; a certificate that does not verify is an error, never a silent fallback |
//! | `require`, `verify-ca`, `verify-full` | TLS or no connection |
//! | `disable` | plain TCP |
//!
//! Whenever TLS is used the server's certificate is verified — against `sslrootcert` (a PEM
//! file of CA certificates) or else the system's roots — and must name the host connected
//! to. That is stricter than libpq, whose `require` checks no certificate: a store holds
//! password hashes and (sealed) signing keys, so a connection anyone on the path could
//! intercept is not offered. rustls with the ring provider: no OpenSSL to link or patch.

use std::fs;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why TLS to PostgreSQL cannot be set up from a store URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

type Result<T> = std::result::Result<T, TlsError>;

/// How a store URL asks for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS or no connection.
    Require,
}

/// A store URL split into what the PostgreSQL client takes and the TLS settings pat-admin
/// handles itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The URL for the client: `sslmode` normalized to what it knows (`disable`, `prefer`,
    /// `require`), `sslrootcert` removed.
    pub url: String,
    /// The mode.
    pub mode: Mode,
    /// The CA certificates file, if given.
    pub root_cert: Option<String>,
}

/// Splits `sslmode` and `sslrootcert` out of a `postgres://` URL's query.
pub fn settings(url: &str) -> Result<Settings> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = Mode::Prefer;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => {
                mode = match value {
                    "disable" => Mode::Disable,
                    "allow" | "prefer" => Mode::Prefer,
                    "require" | "verify-ca" | "verify-full" => Mode::Require,
                    other => {
                        return Err(TlsError(format!(
                            "store URL: sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                        )));
                    }
                }
            }
            "sslrootcert" => {
                let path = percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|_| TlsError("store URL: sslrootcert is not UTF-8".into()))?;
                root_cert = Some(path.into_owned());
            }
            _ => kept.push(pair),
        }
    }
    kept.push(match mode {
        Mode::Disable => "sslmode=disable",
        Mode::Prefer => "sslmode=prefer",
        Mode::Require => "sslmode=require",
    });
    Ok(Settings {
        url: format!("{base}?{}", kept.join("&")),
        mode,
        root_cert,
    })
}

/// The TLS connector for these settings: the server certificate verified against the root
/// certificates file, or else the system's roots.
pub fn connector(settings: &Settings) -> Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match &settings.root_cert {
        Some(path) => {
            let pem = fs::read(path).map_err(|e| {
                TlsError(format!(
                    "store URL: cannot read sslrootcert {path}: {e}; give a PEM file of the CA certificates that signed the server's certificate"
                ))
            })?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| TlsError(format!("store URL: sslrootcert {path} is not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(TlsError(format!(
                    "store URL: sslrootcert {path} holds no certificate"
                )));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    TlsError(format!(
                        "store URL: sslrootcert {path}: a certificate is not usable: {e}"
                    ))
                })?;
            }
        }
        None => {
            // Certificates the system store holds but rustls cannot parse are skipped.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    // ring: no C toolchain beyond what the rest of the build needs. rustls 0.23.48 marks
    // it deprecated for lacking a post-quantum key exchange (X25519MLKEM768, which only its
    // aws-lc-rs provider has); the classical X25519 exchange is what PostgreSQL's own
    // OpenSSL-based clients negotiate with most servers today.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS to PostgreSQL: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_map_to_what_the_client_knows() {
        let s = settings("postgres://u@db/pat").unwrap();
        assert_eq!(
            (s.mode, s.url.as_str()),
            (Mode::Prefer, "postgres://u@db/pat?sslmode=prefer")
        );
        let s = settings(
            "postgres://u@db/pat?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(s.mode, Mode::Require);
        assert_eq!(s.root_cert.as_deref(), Some("/etc/ca.pem"));
        assert_eq!(
            s.url,
            "postgres://u@db/pat?connect_timeout=3&sslmode=require"
        );
        assert_eq!(
            settings("postgres://db/p?sslmode=disable").unwrap().mode,
            Mode::Disable
        );
        assert_eq!(
            settings("postgres://db/p?sslmode=allow").unwrap().mode,
            Mode::Prefer
        );
        let error = settings("postgres://db/p?sslmode=maybe")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sslmode `maybe`"), "{error}");
    }

    #[test]
    fn a_root_certificate_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let with = |path: &std::path::Path| Settings {
            url: String::new(),
            mode: Mode::Require,
            root_cert: Some(path.display().to_string()),
        };
        let error = connector(&with(&missing)).err().unwrap().to_string();
        assert!(error.contains("cannot read sslrootcert"), "{error}");
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "not a certificate\n").unwrap();
        let error = connector(&with(&empty)).err().unwrap().to_string();
        assert!(error.contains("holds no certificate"), "{error}");
        // The system's roots, when none is given.
        assert!(
            connector(&Settings {
                url: String::new(),
                mode: Mode::Prefer,
                root_cert: None
            })
            .is_ok()
        );
    }
}
