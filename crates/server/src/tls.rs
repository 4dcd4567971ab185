//! TLS for every door (rustls with the ring provider; TLS 1.2 and 1.3 only).
//!
//! One certificate chain and key (PEM files) serve every TLS address. With a CA file, client
//! certificates are asked for (`auth_clients = optional`) or required (`yes`) and checked
//! against it. The certificate and key are read again when either file changes, without a
//! restart: new connections get the new ones, connections already open keep theirs. A reload
//! that fails (a file unreadable, a key that does not match, a certificate already expired) keeps
//! the ones in use and logs why.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Whether clients must show a certificate (Redis's `tls-auth-clients`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate is asked for (the default: browsers and curl rarely have one).
    #[default]
    No,
    /// One is asked for and checked if given.
    Optional,
    /// One signed by the CA is required.
    Yes,
}

impl std::str::FromStr for ClientAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "no" => Ok(ClientAuth::No),
            "optional" => Ok(ClientAuth::Optional),
            "yes" => Ok(ClientAuth::Yes),
            _ => Err(format!("expected no, optional or yes, not {s:?}")),
        }
    }
}

/// TLS settings (README, "Securing kvs").
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain, PEM, the server's own certificate first.
    pub cert_file: Option<PathBuf>,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// CA certificates, PEM, that client certificates must chain to.
    pub ca_cert_file: Option<PathBuf>,
    /// TLS address of the HTTP door (HTTPS), beside or instead of its plain one.
    pub http: Option<std::net::SocketAddr>,
    /// TLS address of the Redis-protocol door (Redis's `tls-port`).
    pub resp: Option<std::net::SocketAddr>,
    /// TLS address of the line-protocol door.
    pub line: Option<std::net::SocketAddr>,
    pub auth_clients: ClientAuth,
}

impl TlsSettings {
    /// Whether any door is served over TLS.
    pub fn enabled(&self) -> bool {
        self.http.is_some() || self.resp.is_some() || self.line.is_some()
    }
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS needs a certificate and a key: give --tls-cert and --tls-key")]
    MissingFiles,
    #[error(
        "--tls-auth-clients {0:?} needs --tls-ca-cert, the CA client certificates must chain to"
    )]
    MissingCa(ClientAuth),
    #[error("TLS: {0}")]
    Invalid(String),
}

/// The certificate and key in use, and what is known of their files.
#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when last read.
    stamps: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads a certificate chain and key, checking that they belong together and that the
/// certificate is valid now.
fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
    let Some(first) = chain.first() else {
        return Err(format!("{} holds no certificate", cert.display()));
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(first)
        .map_err(|e| format!("{} is not a valid certificate: {e}", cert.display()))?;
    let validity = parsed.validity();
    if !validity.is_valid() {
        return Err(format!(
            "the certificate in {} is valid only from {} to {}",
            cert.display(),
            validity.not_before,
            validity.not_after
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the key {}: {e}", key.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&private)
        .map_err(|e| format!("unusable key {}: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| format!("{} does not match {}: {e}", key.display(), cert.display()))?;
    Ok(certified)
}

/// TLS as the server uses it: the acceptor for handshakes, and what reloads the certificate.
#[derive(Clone)]
pub(crate) struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    reloading: Arc<Reloading>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.reloading.cert)
            .finish()
    }
}

impl Tls {
    /// TLS as `settings` say, or `None` when no door uses it.
    pub(crate) fn open(settings: &TlsSettings) -> Result<Option<Self>, TlsError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) else {
            return Err(TlsError::MissingFiles);
        };
        let certified = load(cert, key).map_err(TlsError::Invalid)?;
        let reloading = Arc::new(Reloading {
            cert: cert.clone(),
            key: key.clone(),
            current: RwLock::new(Arc::new(certified)),
            stamps: Mutex::new((modified(cert), modified(key))),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .map_err(|e| TlsError::Invalid(e.to_string()))?;
        let builder = match settings.auth_clients {
            ClientAuth::No => builder.with_no_client_auth(),
            wanted => {
                let Some(ca) = &settings.ca_cert_file else {
                    return Err(TlsError::MissingCa(wanted));
                };
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca)
                    .map_err(|e| TlsError::Invalid(format!("cannot read {}: {e}", ca.display())))?
                {
                    let c = c.map_err(|e| {
                        TlsError::Invalid(format!("cannot read {}: {e}", ca.display()))
                    })?;
                    roots
                        .add(c)
                        .map_err(|e| TlsError::Invalid(format!("{}: {e}", ca.display())))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if wanted == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::Invalid(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_cert_resolver(reloading.clone());
        Ok(Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            reloading,
        }))
    }

    /// Reads the certificate and key again if either file changed; keeps the old ones (and
    /// says why) if the new ones cannot be used. Whether new ones were taken.
    pub(crate) fn reload_if_changed(&self) -> bool {
        let r = &self.reloading;
        let now = (modified(&r.cert), modified(&r.key));
        let mut stamps = r.stamps.lock();
        if *stamps == now {
            return false;
        }
        *stamps = now;
        match load(&r.cert, &r.key) {
            Ok(certified) => {
                *r.current.write() = Arc::new(certified);
                tracing::info!(cert = %r.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(why) => {
                tracing::error!("TLS certificate not reloaded, the one in use stays: {why}");
                false
            }
        }
    }
}

/// How often the certificate files are looked at.
pub(crate) const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// Looks at the certificate files every [`RELOAD_CHECK`] until `stop`.
pub(crate) async fn watch(tls: Tls, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RELOAD_CHECK) => {}
        }
        let tls = tls.clone();
        let _ = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_needs_its_files_and_a_ca_for_client_certificates() {
        let none = TlsSettings::default();
        assert!(
            matches!(Tls::open(&none), Ok(None)),
            "no TLS address, no TLS"
        );
        let mut settings = TlsSettings {
            resp: Some("127.0.0.1:0".parse().expect("addr")),
            ..TlsSettings::default()
        };
        assert!(matches!(Tls::open(&settings), Err(TlsError::MissingFiles)));
        settings.cert_file = Some("/nonexistent/cert.pem".into());
        settings.key_file = Some("/nonexistent/key.pem".into());
        match Tls::open(&settings) {
            Err(TlsError::Invalid(why)) => assert!(why.contains("/nonexistent/cert.pem"), "{why}"),
            other => panic!("expected a clear error, got {other:?}"),
        }
        assert_eq!("optional".parse::<ClientAuth>(), Ok(ClientAuth::Optional));
        assert!("maybe".parse::<ClientAuth>().is_err());
    }
}
