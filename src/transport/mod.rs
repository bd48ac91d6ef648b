//! Transports: how a request reaches the target.
//!
//! A transport hands out lanes. A lane sends one request at a time and owns (or shares) a
//! connection; the engine runs one task per lane, so the number of lanes bounds the requests
//! being written or awaited at once. HTTP/1.1 has one lane per connection; HTTP/2 lanes (REST
//! and gRPC) share connections, one stream each. Every transport connects through
//! [`connect::Connector`], which adds TLS for `https://` targets.

pub mod connect;
pub mod grpc;
pub mod grpc_reply;
pub mod http1;
pub mod http1_raw;
pub mod http2;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Instant;

use http::Uri;

use crate::scenario::Transport as TransportKind;
use crate::stats::{ErrorKind, Exchange, Failure};

/// One request to send.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// When the schedule wanted it sent; latency is measured from here.
    pub intended: Instant,
    /// Position in the run, used to rotate payloads.
    pub sequence: u64,
    /// False during warm-up.
    pub measured: bool,
}

/// A factory of lanes.
pub trait Transport: Send + Sync + 'static {
    type Lane: Lane;

    /// Creates lane `index`; lanes may share connections.
    fn lane(&self, index: usize) -> Self::Lane;
}

/// Sends requests one at a time.
pub trait Lane: Send + 'static {
    /// Sends `job`'s request and waits for the whole response or a failure. Never panics on
    /// anything the target sends.
    fn send(&mut self, job: &Job) -> impl Future<Output = Exchange> + Send;
}

/// Resolves the socket address of a base URL's authority, defaulting the port from the scheme.
pub async fn resolve(base: &Uri) -> Result<SocketAddr, String> {
    let host = base
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = base.port_u16().unwrap_or(match base.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| format!("{host}:{port} resolved to no address"))
}

/// Maps a connect error to its kind. A connection the target accepted and then reset before
/// the connect call returned is a reset, not a failure to connect.
pub fn connect_error_kind(error: &std::io::Error) -> ErrorKind {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
        std::io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
            ErrorKind::Reset
        }
        _ => ErrorKind::ConnectFailed,
    }
}

/// Opens one TLS connection offering `h2` and `http/1.1` by ALPN and returns the REST
/// transport of the server's choice: HTTP/2 for `h2`, else HTTP/1.1 (a server that chooses
/// no protocol speaks HTTP/1.1).
pub async fn negotiate_http(connector: &connect::Connector) -> Result<TransportKind, Failure> {
    let io = connector
        .connect(&[connect::ALPN_H2, connect::ALPN_HTTP1])
        .await?;
    let chosen = match io.inner().alpn() {
        Some(connect::ALPN_H2) => TransportKind::Http2,
        _ => TransportKind::Http1,
    };
    tracing::debug!(?chosen, "HTTP version chosen by ALPN");
    Ok(chosen)
}

/// Builds the plan of a one-connection test scenario against `url` over `transport` (`http2`
/// or `grpc`), with its payload file written to `dir`.
#[cfg(test)]
pub(crate) fn test_plan(
    dir: &std::path::Path,
    url: &str,
    transport: &str,
) -> crate::scenario::RunPlan {
    use crate::scenario::{Overrides, RunPlan, Scenario};

    std::fs::write(
        dir.join("x.json"),
        r#"{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}"#,
    )
    .unwrap();
    let text = format!(
        "[target]\nurl = \"{url}\"\nmodel = \"m\"\ntransport = \"{transport}\"\n\
         [payload]\nfile = \"x.json\"\n[load]\nrate = \"10/s\"\nconnections = 1\n"
    );
    let path = dir.join("s.toml");
    let scenario = Scenario::from_toml(&text, &path).unwrap();
    RunPlan::build(scenario, &path, &Overrides::default()).unwrap()
}
