//! TLS client settings (rustls with the ring provider) and the reasons of TLS failures.
//!
//! Server certificates are verified against the Mozilla roots from `webpki-roots`, or only
//! against the certificates of `ca_cert` when it is set. `client_cert` and `client_key` add a
//! client certificate for servers that require one (mTLS). `insecure` accepts any server
//! certificate, and the first connector built with it prints a warning.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// TLS settings of a run, from `[target.tls]` and the command line. Paths are resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CA certificates that verify the server, in place of the built-in roots.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of the client certificate chain, for mTLS.
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client's private key (PKCS#8, PKCS#1 or SEC1), for mTLS.
    pub client_key: Option<PathBuf>,
    /// Accept any server certificate without verification.
    pub insecure: bool,
}

impl TlsOptions {
    /// Returns whether any option is set.
    pub fn is_set(&self) -> bool {
        *self != TlsOptions::default()
    }
}

/// Errors of building a TLS client configuration from its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} contains no PEM {what}; give a PEM file with a \
         \"-----BEGIN {label}-----\" block"
    )]
    Empty {
        path: PathBuf,
        what: &'static str,
        label: &'static str,
    },
    #[error("{path} is not a valid PEM {what}: {message}; give a PEM file")]
    Invalid {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error(
        "{path} does not match the client certificate: {message}; give the key of that certificate"
    )]
    KeyMismatch { path: PathBuf, message: String },
}

/// Builds a verified rustls client configuration, without ALPN protocols.
pub fn client_config(options: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3");
    let builder = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AcceptAny(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &options.ca_cert {
            Some(path) => {
                for cert in read_certs(path)? {
                    roots.add(cert).map_err(|e| TlsError::Invalid {
                        path: path.clone(),
                        what: "CA certificate",
                        message: e.to_string(),
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&options.client_cert, &options.client_key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key_der = read_key(key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                        path: key.clone(),
                        message: e.to_string(),
                    },
                    other => TlsError::Invalid {
                        path: cert.clone(),
                        what: "client certificate",
                        message: other.to_string(),
                    },
                })?
        }
        // The plan rejects one of the two without the other.
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Prints the `insecure` warning on stderr, once per process.
pub fn warn_insecure_once() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "warning: --insecure: server certificates are not verified, so the run cannot tell \
             the target from an impostor; use --ca-cert FILE to verify a private CA"
        );
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads every certificate of a PEM file; a file with none is an error.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Invalid {
            path: path.to_owned(),
            what: "certificate",
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_owned(),
            what: "certificate",
            label: "CERTIFICATE",
        });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            path: path.to_owned(),
            what: "private key",
            label: "PRIVATE KEY",
        },
        other => TlsError::Invalid {
            path: path.to_owned(),
            what: "private key",
            message: other.to_string(),
        },
    })
}

/// Returns the rustls error behind `error`, searching its source chain, the I/O errors in it
/// and the HTTP/2 errors in it. A TLS alert the server sends after the handshake (such as
/// `CertificateRequired` under TLS 1.3) surfaces this way on the first read.
pub fn find_tls_error<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = if let Some(io) = error.downcast_ref::<std::io::Error>() {
            io.get_ref().map(|inner| inner as &(dyn StdError + 'static))
        } else if let Some(h2) = error.downcast_ref::<h2::Error>() {
            h2.get_io().map(|io| io as &(dyn StdError + 'static))
        } else {
            None
        };
        // io::Error::source skips its own inner error, so the inner error is searched first.
        current = inner.or_else(|| error.source());
    }
    None
}

/// The verifier behind `insecure`.
mod insecure {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// Accepts every server certificate, but still checks the handshake signatures so the
    /// connection is encrypted to the holder of the presented key.
    #[derive(Debug)]
    pub struct AcceptAny(pub Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_names_path() {
        let options = TlsOptions {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            ..TlsOptions::default()
        };
        let message = client_config(&options).unwrap_err().to_string();
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
        assert!(message.contains("check the path"), "{message}");
    }

    #[test]
    fn file_without_pem_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let options = TlsOptions {
            ca_cert: Some(path.clone()),
            ..TlsOptions::default()
        };
        let message = client_config(&options).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("BEGIN CERTIFICATE"), "{message}");
    }

    #[test]
    fn key_file_without_key_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "").unwrap();
        let message = read_key(&path).unwrap_err().to_string();
        assert!(message.contains("no PEM private key"), "{message}");
    }

    #[test]
    fn tls_error_found_inside_io_error() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let found = find_tls_error(&io).expect("rustls error found");
        assert_eq!(found.to_string(), "invalid peer certificate: UnknownIssuer");
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(find_tls_error(&plain).is_none());
    }
}
