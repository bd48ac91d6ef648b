//! Readiness checks before any load: the server is ready and the model is ready. A failure stops
//! the run with a message and sends no load.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::scenario::TargetPlan;

/// Why the target is not ready. Unreachable targets are a different failure (exit 1) from a
/// target that answers "not ready" (also exit 1, but the message names the endpoint).
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("cannot connect to the target at {addr}: {reason}; check that it is running and that the URL is right")]
    Unreachable { addr: SocketAddr, reason: String },
    #[error("the target is not ready: GET {path} answered {status} {body}; wait until it is ready or fix target.url / target.model")]
    NotReady {
        path: String,
        status: u16,
        body: String,
    },
    #[error("readiness check GET {path} failed: {reason}; check that target.url points at a V2 inference server")]
    Failed { path: String, reason: String },
}

/// A GET response: status and up to 64 KiB of body.
pub struct SimpleResponse {
    pub status: u16,
    pub body: Bytes,
}

/// Sends one GET over a new HTTP/1.1 connection, with the target's Host override and headers.
pub async fn get(
    target: &TargetPlan,
    addr: SocketAddr,
    path: &str,
) -> Result<SimpleResponse, PreflightError> {
    let failed = |reason: String| PreflightError::Failed {
        path: path.to_string(),
        reason,
    };
    let stream = tokio::time::timeout(target.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| PreflightError::Unreachable {
            addr,
            reason: "connect timed out".into(),
        })?
        .map_err(|e| PreflightError::Unreachable {
            addr,
            reason: e.to_string(),
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(e.to_string()))?;
    tokio::spawn(connection);

    let host = match (&target.host, &target.base) {
        (Some(host), _) => host.clone(),
        (None, Some(base)) => base.authority().map(|a| a.to_string()).unwrap_or_default(),
        (None, None) => addr.to_string(),
    };
    let mut builder = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(HOST, host);
    for (name, value) in &target.headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(e.to_string()))?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        Ok(SimpleResponse { status, body })
    };
    tokio::time::timeout(target.timeout.max(Duration::from_secs(1)), exchange)
        .await
        .map_err(|_| failed(format!("no answer within {:?}", target.timeout)))?
}

/// Checks `GET /v2/health/ready` and `GET /v2/models/{m}/ready`.
pub async fn check(target: &TargetPlan, addr: SocketAddr) -> Result<(), PreflightError> {
    for path in [
        target.server_path("/health/ready"),
        target.model_path("/ready"),
    ] {
        let response = get(target, addr, &path).await?;
        if !(200..300).contains(&response.status) {
            let body = String::from_utf8_lossy(&response.body[..response.body.len().min(200)]);
            let body = target.headers.scrub(body.trim()).into_owned();
            return Err(PreflightError::NotReady {
                path,
                status: response.status,
                body,
            });
        }
    }
    Ok(())
}
