//! Readiness checks before any load (the server is ready and the model is ready) over REST or
//! gRPC, and the model metadata fetch. A failure stops the run with a message and sends no
//! load.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioExecutor;

use super::grpc_api::grpc_inference_service_client::GrpcInferenceServiceClient;
use super::grpc_api::{ModelMetadataRequest, ModelReadyRequest, ServerReadyRequest};
use super::metadata::ModelMetadata;
use crate::scenario::{TargetPlan, Transport};
use crate::stats::{ErrorKind, Failure};
use crate::transport::connect::{
    reclassify, tls_failure, Connector, TlsErrorCell, ALPN_H2, ALPN_HTTP1,
};

/// Why the target is not ready. Unreachable targets are a different failure (exit 1) from a
/// target that answers "not ready" (also exit 1, but the message names the endpoint).
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("cannot connect to the target at {addr}: {reason}; check that it is running and that the URL is right")]
    Unreachable { addr: SocketAddr, reason: String },
    #[error("the target is not ready: {path} answered {status} {body}; wait until it is ready or fix target.url / target.model")]
    NotReady {
        path: String,
        status: u16,
        body: String,
    },
    #[error("readiness check GET {path} failed: {reason}; check that target.url points at a V2 inference server")]
    Failed { path: String, reason: String },
    #[error("TLS with the target at {addr} failed: {reason}; for a private CA pass --ca-cert FILE, check that target.host (or the URL host) is a name in the server certificate, pass --client-cert and --client-key if the server requires a client certificate, or set target.preflight = false to count these failures under load")]
    Tls { addr: SocketAddr, reason: String },
}

impl PreflightError {
    /// Builds the error for a connect that failed with `failure`.
    pub fn connect(addr: SocketAddr, failure: Failure) -> PreflightError {
        let reason = match &failure.body {
            Some(body) => String::from_utf8_lossy(body).into_owned(),
            None => failure.kind.name().to_string(),
        };
        if failure.kind == ErrorKind::Tls {
            let reason = reason.strip_prefix("TLS: ").unwrap_or(&reason).to_string();
            PreflightError::Tls { addr, reason }
        } else {
            PreflightError::Unreachable { addr, reason }
        }
    }
}

/// A GET response: status and up to 64 KiB of body.
pub struct SimpleResponse {
    pub status: u16,
    pub body: Bytes,
}

/// Sends one GET over a new connection of the target's HTTP version (HTTP/2 for the `http2`
/// transport, else HTTP/1.1), with the target's Host override and headers.
pub async fn get(
    target: &TargetPlan,
    connector: &Connector,
    path: &str,
) -> Result<SimpleResponse, PreflightError> {
    let addr = connector.addr;
    let http2 = target.transport == Transport::Http2;
    let alpn = if http2 { ALPN_H2 } else { ALPN_HTTP1 };
    let stream = connector
        .connect(&[alpn])
        .await
        .map_err(|failure| PreflightError::connect(addr, failure))?;
    let tls_error = stream.inner().tls_error();
    let failed = |error: hyper::Error| {
        let failure = tls_failure(&error).unwrap_or_else(|| Failure::new(ErrorKind::Reset));
        match reclassify(failure, tls_error.as_ref()) {
            failure if failure.kind == ErrorKind::Tls => PreflightError::connect(addr, failure),
            _ => PreflightError::Failed {
                path: path.to_string(),
                reason: error.to_string(),
            },
        }
    };

    let host = match (&target.host, &target.base) {
        (Some(host), _) => host.clone(),
        (None, Some(base)) => base.authority().map(|a| a.to_string()).unwrap_or_default(),
        (None, None) => addr.to_string(),
    };
    let mut builder = Request::builder().method(Method::GET);
    if http2 {
        // HTTP/2 carries the Host override in the `:authority` of an absolute URI.
        let scheme = if connector.is_tls() { "https" } else { "http" };
        builder = builder.uri(format!("{scheme}://{host}{path}"));
    } else {
        builder = builder.uri(path).header(HOST, host);
    }
    for (name, value) in &target.headers {
        if !(http2 && name == HOST) {
            builder = builder.header(name, value);
        }
    }
    let request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| PreflightError::Failed {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    let exchange = async {
        let response = if http2 {
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), stream)
                    .await
                    .map_err(failed)?;
            tokio::spawn(connection);
            sender.send_request(request).await
        } else {
            let (mut sender, connection) = hyper::client::conn::http1::handshake(stream)
                .await
                .map_err(failed)?;
            tokio::spawn(connection);
            sender.send_request(request).await
        }
        .map_err(failed)?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|e| PreflightError::Failed {
                path: path.to_string(),
                reason: e.to_string(),
            })?
            .to_bytes();
        Ok(SimpleResponse { status, body })
    };
    tokio::time::timeout(target.timeout.max(Duration::from_secs(1)), exchange)
        .await
        .map_err(|_| PreflightError::Failed {
            path: path.to_string(),
            reason: format!("no answer within {:?}", target.timeout),
        })?
}

/// Checks `GET /v2/health/ready` and `GET /v2/models/{m}/ready`.
pub async fn check(target: &TargetPlan, connector: &Connector) -> Result<(), PreflightError> {
    for path in [
        target.server_path("/health/ready"),
        target.model_path("/ready"),
    ] {
        let response = get(target, connector, &path).await?;
        if !(200..300).contains(&response.status) {
            let body = String::from_utf8_lossy(&response.body[..response.body.len().min(200)]);
            let body = target.headers.scrub(body.trim()).into_owned();
            return Err(PreflightError::NotReady {
                path: format!("GET {path}"),
                status: response.status,
                body,
            });
        }
    }
    Ok(())
}

/// Checks ServerReady and ModelReady over gRPC.
pub async fn check_grpc(
    target: &TargetPlan,
    connector: &Connector,
    origin: &http::Uri,
) -> Result<(), PreflightError> {
    let (mut client, tls_error) = grpc_client(target, connector, origin).await?;
    let tls_failed = |error| explain_tls(error, connector.addr, tls_error.as_ref());
    let timeout = target.timeout.max(Duration::from_secs(1));
    let server = tokio::time::timeout(
        timeout,
        client.server_ready(grpc_request(target, ServerReadyRequest {})),
    )
    .await;
    let ready = grpc_answer("ServerReady", server)
        .map_err(tls_failed)?
        .ready;
    if !ready {
        return Err(PreflightError::NotReady {
            path: "gRPC ServerReady".into(),
            status: 200,
            body: "ready: false".into(),
        });
    }
    let model = tokio::time::timeout(
        timeout,
        client.model_ready(grpc_request(
            target,
            ModelReadyRequest {
                name: target.model.clone(),
                version: target.version.clone().unwrap_or_default(),
            },
        )),
    )
    .await;
    let method = format!("ModelReady {}", target.model);
    if !grpc_answer(&method, model).map_err(tls_failed)?.ready {
        return Err(PreflightError::NotReady {
            path: format!("gRPC ModelReady {}", target.model),
            status: 200,
            body: "ready: false".into(),
        });
    }
    Ok(())
}

/// Fetches the model metadata over REST (`GET /v2/models/{m}`).
pub async fn metadata_rest(
    target: &TargetPlan,
    connector: &Connector,
) -> Result<ModelMetadata, PreflightError> {
    let path = target.model_path("");
    let response = get(target, connector, &path).await?;
    if !(200..300).contains(&response.status) {
        return Err(PreflightError::NotReady {
            body: String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
                .trim()
                .to_string(),
            path: format!("GET {path}"),
            status: response.status,
        });
    }
    ModelMetadata::from_json(&response.body)
        .map_err(|reason| PreflightError::Failed { path, reason })
}

/// Fetches the model metadata over gRPC (ModelMetadata).
pub async fn metadata_grpc(
    target: &TargetPlan,
    connector: &Connector,
    origin: &http::Uri,
) -> Result<ModelMetadata, PreflightError> {
    let (mut client, tls_error) = grpc_client(target, connector, origin).await?;
    let tls_failed = |error| explain_tls(error, connector.addr, tls_error.as_ref());
    let answer = tokio::time::timeout(
        target.timeout.max(Duration::from_secs(1)),
        client.model_metadata(grpc_request(
            target,
            ModelMetadataRequest {
                name: target.model.clone(),
                version: target.version.clone().unwrap_or_default(),
            },
        )),
    )
    .await;
    Ok(ModelMetadata::from_grpc(
        grpc_answer("ModelMetadata", answer).map_err(tls_failed)?,
    ))
}

type GrpcClient = GrpcInferenceServiceClient<crate::transport::grpc::H2Service>;

/// Replaces a failed gRPC call's error with the TLS error the connection read (such as an
/// alert sent after the handshake), because the call's status does not show it.
fn explain_tls(
    error: PreflightError,
    addr: SocketAddr,
    tls_error: Option<&TlsErrorCell>,
) -> PreflightError {
    match tls_error.and_then(|state| state.error()) {
        Some(reason) => PreflightError::Tls {
            addr,
            reason: reason.strip_prefix("TLS: ").unwrap_or(reason).to_string(),
        },
        None => error,
    }
}

async fn grpc_client(
    target: &TargetPlan,
    connector: &Connector,
    origin: &http::Uri,
) -> Result<(GrpcClient, Option<TlsErrorCell>), PreflightError> {
    let (sender, tls_error) = crate::transport::grpc::open(connector)
        .await
        .map_err(|failure| PreflightError::connect(connector.addr, failure))?;
    let client = GrpcInferenceServiceClient::with_origin(
        crate::transport::grpc::H2Service(sender),
        origin.clone(),
    )
    .max_decoding_message_size(target.grpc.max_receive_message_size as usize);
    Ok((client, tls_error))
}

fn grpc_request<T>(target: &TargetPlan, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for (name, value) in &target.headers {
        request
            .metadata_mut()
            .as_mut()
            .append(name.clone(), value.clone());
    }
    request
}

fn grpc_answer<T>(
    method: &str,
    answer: Result<Result<tonic::Response<T>, tonic::Status>, tokio::time::error::Elapsed>,
) -> Result<T, PreflightError> {
    match answer {
        Err(_) => Err(PreflightError::Failed {
            path: format!("gRPC {method}"),
            reason: "no answer within the request timeout".into(),
        }),
        Ok(Err(status)) => Err(PreflightError::NotReady {
            path: format!("gRPC {method}"),
            status: status.code() as u16,
            body: format!("({:?}) {}", status.code(), status.message()),
        }),
        Ok(Ok(response)) => Ok(response.into_inner()),
    }
}
