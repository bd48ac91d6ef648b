//! TLS for the embedded target: a rustls server configuration from PEM files, offering `h2`
//! and `http/1.1` by ALPN, and requiring client certificates when a client CA is given.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::transport::tls::{read_certs, read_key, TlsError};

/// TLS options of `inferload serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeTlsArgs {
    /// PEM file of the server certificate chain; with --tls-key, serves TLS (h2 and http/1.1
    /// by ALPN) in place of plain HTTP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file of the private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM file of the CA certificates that client certificates must chain to; every client
    /// must then present one (mTLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
}

/// Errors of building the server's TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum ServeTlsError {
    #[error(transparent)]
    File(#[from] TlsError),
    #[error("{path}: {message}; give a CA certificate that can verify client certificates")]
    ClientCa { path: PathBuf, message: String },
    #[error("--tls-key does not match --tls-cert: {0}; give the key of that certificate")]
    KeyMismatch(String),
}

impl ServeTlsArgs {
    /// Builds the acceptor, or `None` when TLS is not asked for.
    pub fn acceptor(&self) -> Result<Option<TlsAcceptor>, ServeTlsError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let chain = read_certs(cert)?;
        let key = read_key(key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3");
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in read_certs(path)? {
                    roots.add(ca).map_err(|e| ServeTlsError::ClientCa {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| ServeTlsError::ClientCa {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| ServeTlsError::KeyMismatch(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(TlsAcceptor::from(Arc::new(config))))
    }
}
