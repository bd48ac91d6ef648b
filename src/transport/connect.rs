//! Opening connections to the target: TCP with the connect timeout, then TLS (rustls) for
//! `https://` targets with the protocol chosen by ALPN, and the error kinds of a failed
//! connect.
//!
//! The TLS server name, sent as SNI and verified against the certificate, is the Host override
//! without its port when one is set, else the URL's host.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::connect_error_kind;
use crate::scenario::TargetPlan;
use crate::stats::{ErrorKind, Failure};

/// ALPN protocol name of HTTP/2 over TLS.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN protocol name of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Opens connections to one resolved address, over TLS when the target URL is `https://`.
#[derive(Clone)]
pub struct Connector {
    pub addr: SocketAddr,
    pub timeout: Duration,
    tls: Option<Tls>,
}

/// The TLS configuration (without ALPN) and the server name to verify.
#[derive(Clone)]
struct Tls {
    config: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

impl Connector {
    /// A plain TCP connector.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Connector {
        Connector {
            addr,
            timeout,
            tls: None,
        }
    }

    /// Builds a connector for `target`, with TLS when the plan has a TLS configuration.
    pub fn for_target(target: &TargetPlan, addr: SocketAddr) -> Result<Connector, String> {
        let mut connector = Connector::new(addr, target.connect_timeout);
        let Some(tls) = &target.tls else {
            return Ok(connector);
        };
        let name = tls_server_name(target);
        let server_name = ServerName::try_from(name.clone()).map_err(|_| {
            format!(
                "{name:?} is not a valid TLS server name; set target.host (or the URL's host) \
                 to a DNS name or an IP address"
            )
        })?;
        connector.tls = Some(Tls {
            config: Arc::clone(&tls.config),
            server_name,
        });
        Ok(connector)
    }

    /// Whether connections use TLS (and so the `https` scheme).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Connects with TCP_NODELAY set, then runs the TLS handshake offering the `alpn`
    /// protocols when the connector uses TLS. A failed handshake is a `tls` failure whose body
    /// is the reason (unknown issuer, name mismatch, alert received, ...).
    pub async fn connect(&self, alpn: &[&[u8]]) -> Result<TokioIo<Stream>, Failure> {
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect(self.addr))
            .await
            .map_err(|_| Failure::new(ErrorKind::ConnectTimeout))?
            .map_err(|e| Failure::new(connect_error_kind(&e)))?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(TokioIo::new(Stream::Plain(stream)));
        };
        // Connections are opened rarely next to requests, so a copy per connect is cheap.
        let mut config = (*tls.config).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let state = TlsErrorCell::default();
        config.client_auth_cert_resolver = Arc::new(RecordingResolver {
            inner: Arc::clone(&config.client_auth_cert_resolver),
            state: Arc::clone(&state),
        });
        let handshake =
            TlsConnector::from(Arc::new(config)).connect(tls.server_name.clone(), stream);
        match tokio::time::timeout(self.timeout, handshake).await {
            Err(_) => Err(Failure::new(ErrorKind::ConnectTimeout)),
            Ok(Err(error)) => Err(tls_failure(&error).unwrap_or_else(|| {
                tracing::debug!(%error, "TLS handshake failed");
                Failure::new(connect_error_kind(&error))
            })),
            Ok(Ok(stream)) => Ok(TokioIo::new(Stream::Tls {
                stream: Box::new(stream),
                error: state,
            })),
        }
    }
}

/// Returns the TLS server name of `target`: the Host override without its port, else the
/// URL host.
pub fn tls_server_name(target: &TargetPlan) -> String {
    let authority = match (&target.host, &target.base) {
        (Some(host), _) => host.clone(),
        (None, Some(base)) => base.host().unwrap_or_default().to_string(),
        (None, None) => String::new(),
    };
    host_without_port(&authority).to_string()
}

/// Strips a `:port` suffix and IPv6 brackets from a Host header value.
fn host_without_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Builds a `tls` failure for an error caused by TLS, with the rustls reason as its body.
pub fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<Failure> {
    let reason = super::tls::find_tls_error(error)?;
    Some(Failure {
        kind: ErrorKind::Tls,
        status: None,
        headers: None,
        body: Some(Bytes::from(format!("TLS: {reason}"))),
    })
}

/// What one TLS connection saw that explains a later failure: its first TLS error, and
/// whether the server requested a client certificate that the run could not send.
///
/// HTTP/2 keeps only the text of an I/O error, and hyper reports a lost connection to waiting
/// requests without its cause. So the stream records the TLS error where it reads it, and
/// lanes consult this state when a request fails (see [`reclassify`]).
#[derive(Debug, Default)]
pub struct TlsState {
    error: OnceLock<String>,
    client_cert_missing: AtomicBool,
}

impl TlsState {
    /// Returns the first TLS error the connection read or wrote, as a failure reason.
    pub fn error(&self) -> Option<&str> {
        self.error.get().map(String::as_str)
    }
}

/// A connection's [`TlsState`], shared by its stream and the lanes that use it.
pub type TlsErrorCell = Arc<TlsState>;

/// Reports to a connection's [`TlsState`] when the server requests a client certificate that
/// the configuration does not have.
#[derive(Debug)]
struct RecordingResolver {
    inner: Arc<dyn ResolvesClientCert>,
    state: TlsErrorCell,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let key = self.inner.resolve(root_hint_subjects, sigschemes);
        if key.is_none() {
            self.state
                .client_cert_missing
                .store(true, Ordering::Relaxed);
        }
        key
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// A connection to the target: plain TCP, or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        error: TlsErrorCell,
    },
}

impl Stream {
    /// Returns the protocol the server chose by ALPN, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls { stream, .. } => stream.get_ref().1.alpn_protocol(),
        }
    }

    /// Returns the cell that receives this connection's first TLS error, for TLS streams.
    pub fn tls_error(&self) -> Option<TlsErrorCell> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls { error, .. } => Some(Arc::clone(error)),
        }
    }
}

/// Turns a reset on a TLS connection into a `tls` failure in two cases. Either the connection
/// saw a TLS error, such as the `CertificateRequired` alert that a TLS 1.3 server sends after
/// the handshake, or the server requested a client certificate that the run could not send.
/// Other failures are returned unchanged.
///
/// NOTE: a server that rejects a client certificate it received may close the connection
/// before its alert is read, and such a reset stays a `reset`. A reset from a server that only
/// asked for an optional client certificate is counted as `tls` when none was configured.
pub fn reclassify(failure: Failure, cell: Option<&TlsErrorCell>) -> Failure {
    let Some(state) = cell.filter(|_| failure.kind == ErrorKind::Reset) else {
        return failure;
    };
    let reason = match state.error.get() {
        Some(reason) => reason.clone(),
        None if state.client_cert_missing.load(Ordering::Relaxed) => {
            "TLS: the server requested a client certificate and none was configured \
             (--client-cert, --client-key)"
                .to_string()
        }
        None => return failure,
    };
    Failure {
        kind: ErrorKind::Tls,
        status: None,
        headers: None,
        body: Some(Bytes::from(reason)),
    }
}

/// Records the reason of a TLS error in `cell` and passes the result on.
fn note_tls_error<T>(
    cell: &TlsErrorCell,
    poll: Poll<std::io::Result<T>>,
) -> Poll<std::io::Result<T>> {
    if let Poll::Ready(Err(error)) = &poll {
        if let Some(tls) = super::tls::find_tls_error(error) {
            let _ = cell.error.set(format!("TLS: {tls}"));
        }
    }
    poll
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls { stream, error } => {
                note_tls_error(error, Pin::new(stream.as_mut()).poll_read(cx, buf))
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls { stream, error } => {
                note_tls_error(error, Pin::new(stream.as_mut()).poll_write(cx, buf))
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls { stream, error } => note_tls_error(
                error,
                Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
            ),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls { stream, .. } => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls { stream, error } => {
                note_tls_error(error, Pin::new(stream.as_mut()).poll_flush(cx))
            }
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls { stream, error } => {
                note_tls_error(error, Pin::new(stream.as_mut()).poll_shutdown(cx))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_is_stripped() {
        assert_eq!(host_without_port("ml-api.local"), "ml-api.local");
        assert_eq!(host_without_port("ml-api.local:8443"), "ml-api.local");
        assert_eq!(host_without_port("127.0.0.1:443"), "127.0.0.1");
        assert_eq!(host_without_port("[::1]:8443"), "::1");
        assert_eq!(host_without_port("[::1]"), "::1");
    }
}
