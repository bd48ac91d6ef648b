//! The embedded reference target: a V2 REST server with simulated latency, stalls, errors and
//! weighted route headers, for the quick start, the tests and benchmarks.
//!
//! It serves HTTP/1.1 and h2c on one port, or with TLS ([`tls`]) HTTP/1.1 and h2 chosen by
//! ALPN, and the V2 gRPC service on the same port (see [`grpc`]). Every response carries
//! the HTTP version of its request in [`HTTP_VERSION_HEADER`]. REST endpoints: `GET /v2/health/live`, `GET /v2/health/ready`, `GET /v2`,
//! `GET /v2/models/{m}`, `GET /v2/models/{m}/ready` and `POST /v2/models/{m}/infer` (each also
//! under `/versions/{v}`). Any model name is served unless `models` lists the served ones.
//! Infer requests are decoded and checked (JSON or the binary tensor extension), so a
//! malformed payload gets 400. Fault modes (resets, bursts of errors, bad bodies,
//! a target that goes down) are in [`faults`].

pub mod faults;
mod grpc;
pub mod hops;
pub mod latency;
mod simulate;
pub mod tls;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Deserialize;
use tokio::net::TcpListener;

pub use faults::{Fault, FaultPlan, ServeBody};
#[cfg(test)]
pub(crate) use grpc::service_for_tests as grpc_service_for_tests;
pub use latency::LatencyModel;

use crate::scenario::units::HumanDuration;
use crate::transport::http1::INFERENCE_HEADER_CONTENT_LENGTH;

/// Response header naming the HTTP version the request arrived with (`HTTP/1.1`,
/// `HTTP/2.0`), so a client can see what ALPN or prior knowledge chose.
pub const HTTP_VERSION_HEADER: &str = "x-inferload-http-version";

/// Options of `inferload serve`, also accepted as `[target.embedded]` in a scenario.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeOptions {
    /// Service time per request: fixed:2ms, uniform:1ms..3ms or lognormal:median=5ms,p99=20ms.
    #[arg(long, default_value = "fixed:0ms")]
    #[serde(default)]
    pub latency: LatencyModel,

    /// Fraction of infer requests answered with HTTP 500, from 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    #[serde(default)]
    pub error_rate: f64,

    /// Every Nth infer request stalls for --stall-for before its normal latency.
    #[arg(long)]
    pub stall_every: Option<u64>,

    /// Extra wait of a stalled request.
    #[arg(long, default_value = "0ms")]
    #[serde(default = "zero_duration")]
    pub stall_for: HumanDuration,

    /// Route labels and weights, e.g. baseline-predictor_1=70,enhanced-predictor_1=30; each
    /// response names one in `x-seldon-route: :label:`.
    #[arg(long)]
    pub routes: Option<RouteWeights>,

    /// Model names served (comma-separated); others get 404. Empty serves any name.
    #[arg(long, value_delimiter = ',')]
    #[serde(default)]
    pub models: Vec<String>,

    /// At most this many requests are served at once; the rest wait their turn.
    #[arg(long)]
    pub max_concurrency: Option<u32>,

    /// Add the timing headers of a simulated NGINX -> Envoy -> model server chain
    /// (x-nginx-request-time, x-nginx-upstream-header-time, x-envoy-upstream-service-time,
    /// Server-Timing inference) to each infer reply.
    #[arg(long)]
    #[serde(default)]
    pub hop_headers: bool,

    /// Time each of the three simulated hops adds on top of --latency, e.g. 1ms.
    #[arg(long, default_value = "0ms")]
    #[serde(default = "zero_duration")]
    pub hop_overhead: HumanDuration,

    /// Which simulated part of the chain produces the --error-rate errors: ingress (NGINX
    /// HTML 503), mesh (Envoy 503, empty body) or model (JSON 500).
    #[arg(long, value_enum, default_value = "model")]
    #[serde(default)]
    pub error_origin: hops::ErrorOrigin,

    /// Seed of the random choices (latency samples, errors, routes).
    #[arg(long, default_value_t = 1)]
    #[serde(default = "default_seed")]
    pub seed: u64,

    /// A fault to inject (repeatable): reset-mid-response:every=N, stall:every=N,for=D,
    /// slow-body:every=N,chunk=B,delay=D, burst-5xx:every=N,len=L, truncated:every=N,
    /// non-json:every=N, oversized:every=N,size=S, http-413:every=N, close-after:every=N,
    /// accept-reset:every=N, down:at=N,for=D, grpc-error:every=N,code=C or goaway:every=N.
    /// N counts infer requests (connections for accept-reset, responses of a connection for
    /// close-after and goaway).
    #[arg(long = "fault", value_name = "SPEC")]
    #[serde(default)]
    pub faults: Vec<Fault>,
}

fn zero_duration() -> HumanDuration {
    HumanDuration(Duration::ZERO)
}

fn default_seed() -> u64 {
    1
}

impl ServeOptions {
    /// Checks values that the types alone do not.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!(
                "error_rate = {} is outside 0..1; use e.g. 0.01 for 1%",
                self.error_rate
            ));
        }
        if self.stall_every == Some(0) {
            return Err("stall_every = 0; use 1 or more, or leave it out".into());
        }
        if self.max_concurrency == Some(0) {
            return Err("max_concurrency = 0; use 1 or more, or leave it out".into());
        }

        Ok(())
    }
}

/// Route labels with relative weights.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteWeights(pub Vec<(String, f64)>);

impl FromStr for RouteWeights {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut routes = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (label, weight) = part.split_once('=').ok_or_else(|| {
                format!("invalid route `{part}`: write LABEL=WEIGHT, e.g. baseline-predictor_1=70")
            })?;
            let weight: f64 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w: &f64| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| {
                    format!("invalid route weight in `{part}`: use a number of 0 or more")
                })?;
            routes.push((label.trim().to_string(), weight));
        }
        if routes.is_empty() || routes.iter().all(|(_, w)| *w == 0.0) {
            return Err(format!(
                "invalid routes `{text}`: give at least one LABEL=WEIGHT with a weight above 0"
            ));
        }
        Ok(RouteWeights(routes))
    }
}

impl<'de> Deserialize<'de> for RouteWeights {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A running embedded target.
pub struct ServerHandle {
    /// Address serving REST and gRPC.
    pub addr: SocketAddr,
    /// The extra gRPC address, when one was asked for.
    pub grpc_addr: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

pub(crate) struct State {
    options: ServeOptions,
    faults: FaultPlan,
    /// Wakes every accept loop when a `down` fault fires, with the outage length.
    down: tokio::sync::broadcast::Sender<Duration>,
    cumulative_weights: Vec<(String, f64)>,
    infer_count: AtomicU64,
    rng: Mutex<SmallRng>,
    metrics: hops::ModelMetrics,
    /// With `max_concurrency`, the instant each of its slots is next free.
    slots: Option<Mutex<BinaryHeap<Reverse<Instant>>>>,
}

/// Binds `addr` and serves REST and gRPC until the returned handle is stopped or dropped with
/// the runtime.
pub async fn start(addr: SocketAddr, options: ServeOptions) -> std::io::Result<ServerHandle> {
    start_with_grpc(addr, None, options).await
}

/// Like [`start`], and also serves on `grpc_addr` when given. Both addresses accept REST and
/// gRPC (told apart by `content-type: application/grpc`) and share one simulation.
pub async fn start_with_grpc(
    addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    options: ServeOptions,
) -> std::io::Result<ServerHandle> {
    start_with_tls(addr, grpc_addr, options, None).await
}

/// Like [`start_with_grpc`], over TLS on both addresses when `tls` is given.
pub async fn start_with_tls(
    addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    options: ServeOptions,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let grpc_listener = match grpc_addr {
        Some(grpc_addr) => Some(TcpListener::bind(grpc_addr).await?),
        None => None,
    };
    let mut total = 0.0;
    let cumulative_weights = options
        .routes
        .as_ref()
        .map(|r| {
            r.0.iter()
                .map(|(label, weight)| {
                    total += weight;
                    (label.clone(), total)
                })
                .collect()
        })
        .unwrap_or_default();
    let (down, _) = tokio::sync::broadcast::channel(4);
    let state = Arc::new(State {
        rng: Mutex::new(SmallRng::seed_from_u64(options.seed)),
        slots: options.max_concurrency.map(|n| {
            let now = Instant::now();
            Mutex::new((0..n).map(|_| Reverse(now)).collect())
        }),
        cumulative_weights,
        infer_count: AtomicU64::new(0),
        metrics: hops::ModelMetrics::default(),
        faults: FaultPlan::new(&options.faults),
        down,
        options,
    });
    let mut tasks = Vec::new();
    let mut grpc_addr = None;
    if let Some(listener) = grpc_listener {
        let local = listener.local_addr()?;
        grpc_addr = Some(local);
        let outages = state.down.subscribe();
        tasks.push(tokio::spawn(accept_loop(
            listener,
            local,
            Arc::clone(&state),
            outages,
            tls.clone(),
        )));
    }
    let outages = state.down.subscribe();
    tasks.push(tokio::spawn(accept_loop(
        listener, addr, state, outages, tls,
    )));
    Ok(ServerHandle {
        addr,
        grpc_addr,
        tasks,
    })
}

/// Maximum wait for a client's TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections and serves each on its own task, after a TLS handshake when `tls` is
/// given. A `down` fault closes the listener and every open connection, waits, and binds the
/// same address again.
async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<State>,
    mut outages: tokio::sync::broadcast::Receiver<Duration>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let mut listener = Some(listener);
    let (generation, _) = tokio::sync::watch::channel(0u64);
    let mut accepted = 0u64;
    let grpc_service = grpc::service(Arc::clone(&state));
    loop {
        let Some(active) = &listener else {
            return;
        };
        let stream = tokio::select! {
            result = active.accept() => match result {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
            outage = outages.recv() => {
                let Ok(outage) = outage else {
                    // Lagged: an outage that fired during the last one is over already.
                    continue;
                };
                tracing::info!(?outage, %addr, "simulated outage: closing the listener and connections");
                drop(listener.take());
                generation.send_modify(|g| *g += 1);
                tokio::time::sleep(outage).await;
                listener = rebind(addr).await;
                continue;
            }
        };
        accepted += 1;
        if state.faults.resets_connection(accepted) {
            let _ = stream.set_zero_linger();
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let grpc_service = grpc_service.clone();
        let mut closed = generation.subscribe();
        let tls = tls.clone();
        tokio::spawn(async move {
            let connection = Arc::new(Connection {
                fd: raw_fd(&stream),
                responses: AtomicU64::new(0),
                goaway: tokio::sync::Notify::new(),
            });
            let goaway = Arc::clone(&connection);
            let service = service_fn(move |request: Request<Incoming>| {
                let state = Arc::clone(&state);
                let connection = Arc::clone(&connection);
                let mut grpc_service = grpc_service.clone();
                async move {
                    let version = version_name(request.version());
                    let mut response = if grpc::is_grpc(&request) {
                        let response =
                            tower_service::Service::call(&mut grpc_service, request).await?;
                        let count = connection.responses.fetch_add(1, Ordering::Relaxed) + 1;
                        if state.faults.goaway_after(count) {
                            connection.goaway.notify_one();
                        }
                        response.map(Either::Right)
                    } else {
                        let response = handle(state, connection, request).await?;
                        response.map(Either::Left)
                    };
                    response
                        .headers_mut()
                        .insert(HTTP_VERSION_HEADER, http::HeaderValue::from_static(version));
                    Ok::<_, Infallible>(response)
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let io: Box<dyn ServeIo> = match tls {
                None => Box::new(stream),
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => Box::new(stream),
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let serving = builder.serve_connection(TokioIo::new(io), service);
            tokio::pin!(serving);
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    _ = serving.as_mut() => break,
                    _ = closed.changed() => break,
                    // HTTP/2 graceful shutdown: GOAWAY, then the streams in flight finish.
                    _ = goaway.goaway.notified(), if !shutting_down => {
                        shutting_down = true;
                        serving.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
}

/// A connection's byte stream: TCP, or TLS over TCP.
trait ServeIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> ServeIo for T {}

/// Returns the name of an HTTP version as in `HTTP/1.1`.
fn version_name(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_11 => "HTTP/1.1",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "unknown",
    }
}

/// Binds `addr` again after an outage, retrying while the port is still in use.
async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..100 {
        match TcpListener::bind(addr).await {
            Ok(listener) => return Some(listener),
            Err(error) => {
                tracing::warn!(%error, %addr, "cannot listen again after the outage; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::error!(%addr, "gave up listening again after the outage");
    None
}

/// Per-connection state seen by the request handler.
struct Connection {
    /// The socket, for a simulated reset; `None` where raw descriptors do not exist.
    fd: Option<i32>,
    responses: AtomicU64,
    /// Wakes the connection's task to send GOAWAY (the `goaway` fault).
    goaway: tokio::sync::Notify,
}

#[cfg(unix)]
fn raw_fd(stream: &tokio::net::TcpStream) -> Option<i32> {
    use std::os::fd::AsRawFd;
    Some(stream.as_raw_fd())
}

#[cfg(not(unix))]
fn raw_fd(_stream: &tokio::net::TcpStream) -> Option<i32> {
    None
}

/// Parsed `/v2/...` path.
enum Endpoint<'a> {
    Live,
    Ready,
    ServerMetadata,
    ModelMetadata(&'a str),
    ModelReady(&'a str),
    Infer(&'a str),
    /// Prometheus text with MLServer's inference metric names.
    Metrics,
}

fn route(path: &str) -> Option<Endpoint<'_>> {
    if path == "/metrics" {
        return Some(Endpoint::Metrics);
    }
    let rest = path.strip_prefix("/v2")?;
    match rest {
        "" | "/" => return Some(Endpoint::ServerMetadata),
        "/health/live" => return Some(Endpoint::Live),
        "/health/ready" => return Some(Endpoint::Ready),
        _ => {}
    }
    let rest = rest.strip_prefix("/models/")?;
    let (model, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let tail = match tail.strip_prefix("versions/") {
        Some(versioned) => versioned.split_once('/').map(|(_, t)| t).unwrap_or(""),
        None => tail,
    };
    match tail {
        "" => Some(Endpoint::ModelMetadata(model)),
        "ready" => Some(Endpoint::ModelReady(model)),
        "infer" => Some(Endpoint::Infer(model)),
        _ => None,
    }
}

fn json(status: StatusCode, body: String) -> Response<ServeBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(ServeBody::full(body))
        .expect("static response parts are valid")
}

fn error(status: StatusCode, message: &str) -> Response<ServeBody> {
    json(status, serde_json::json!({ "error": message }).to_string())
}

async fn handle(
    state: Arc<State>,
    connection: Arc<Connection>,
    request: Request<Incoming>,
) -> Result<Response<ServeBody>, Infallible> {
    let mut response = respond(&state, &connection, request).await;
    let count = connection.responses.fetch_add(1, Ordering::Relaxed) + 1;
    if state.faults.closes_after(count) {
        response
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    Ok(response)
}

async fn respond(
    state: &Arc<State>,
    connection: &Connection,
    request: Request<Incoming>,
) -> Response<ServeBody> {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let Some(endpoint) = route(&path) else {
        return error(StatusCode::NOT_FOUND, &format!("no endpoint at {path}"));
    };
    let known = |model: &str| state.serves(model);
    let response = match (method, endpoint) {
        (Method::GET, Endpoint::Live) => json(StatusCode::OK, r#"{"live":true}"#.into()),
        (Method::GET, Endpoint::Ready) => json(StatusCode::OK, r#"{"ready":true}"#.into()),
        (Method::GET, Endpoint::Metrics) => Response::builder()
            .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
            .body(ServeBody::full(state.metrics.render()))
            .expect("static response parts are valid"),
        (Method::GET, Endpoint::ServerMetadata) => json(
            StatusCode::OK,
            serde_json::json!({"name": "inferload-serve", "version": env!("CARGO_PKG_VERSION"), "extensions": []})
                .to_string(),
        ),
        (_, Endpoint::ModelMetadata(m) | Endpoint::ModelReady(m) | Endpoint::Infer(m)) if !known(m) => {
            error(StatusCode::NOT_FOUND, &format!("model {m} not found"))
        }
        (Method::GET, Endpoint::ModelReady(_)) => json(StatusCode::OK, r#"{"ready":true}"#.into()),
        (Method::GET, Endpoint::ModelMetadata(m)) => json(
            StatusCode::OK,
            serde_json::json!({
                "name": m, "versions": ["1"], "platform": "inferload-serve",
                "inputs": [{"name": "input_data", "datatype": "FP32", "shape": [-1, 10, 35]}],
                "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 2]}]
            })
            .to_string(),
        ),
        (Method::POST, Endpoint::Infer(m)) => {
            let model = m.to_string();
            let header_length = match request.headers().get(INFERENCE_HEADER_CONTENT_LENGTH) {
                None => None,
                Some(value) => match value.to_str().ok().and_then(|v| v.parse().ok()) {
                    Some(length) => Some(length),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "Inference-Header-Content-Length is not a byte count",
                        )
                    }
                },
            };
            infer(state, connection, model, header_length, request.into_body()).await
        }
        (method, _) => error(StatusCode::METHOD_NOT_ALLOWED, &format!("{method} is not allowed on {path}")),
    };
    response
}

/// Largest request body the embedded target reads.
const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;

async fn infer(
    state: &State,
    connection: &Connection,
    model: String,
    header_length: Option<usize>,
    body: Incoming,
) -> Response<ServeBody> {
    let received = std::time::Instant::now();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or cut short",
            )
        }
    };
    if let Err(e) = crate::protocol::encode::from_rest(&body, header_length) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("invalid inference request: {e}"),
        );
    }

    let verdict = state.decide();
    let count = verdict.count;
    state.apply_process_faults(count);
    let fault = state.faults.for_request(count);
    let fail = verdict.fail;
    let route = verdict.route.as_deref();
    let mut inference = verdict.delay;
    if let Some(faults::RequestFault::Stall(extra)) = fault {
        inference += extra;
    }
    let options = &state.options;
    let overhead = if options.hop_headers {
        options.hop_overhead.0
    } else {
        Duration::ZERO
    };
    let total = inference + hops::total_overhead(overhead);
    let deadline = state.service_deadline(total);
    if !total.is_zero() || state.slots.is_some() {
        crate::timer::precise_sleep_until(deadline).await;
    }
    let timing = hops::HopTiming {
        inference,
        overhead,
        elapsed: received.elapsed(),
    };
    let origin = options.error_origin;
    if fault.is_none() && (!fail || origin == hops::ErrorOrigin::Model) {
        // The variant that a route names is the model that served the request, as when Envoy
        // rewrites the model name for the variant it picked.
        let served = route.map_or(model.as_str().into(), crate::stats::routes::model_of);
        state.metrics.record(&served, inference, !fail);
    }

    let reply = format!(
        r#"{{"model_name":"{model}","model_version":"1","outputs":[{{"name":"output","shape":[1,2],"datatype":"FP32","data":[0.25,0.75]}}]}}"#
    );
    let faulted = fault.is_some();
    let mut response = match fault {
        Some(fault) => faults::respond(fault, reply, connection.fd),
        None if fail => hops::simulated_error(origin, options.hop_headers, timing),
        None => json(StatusCode::OK, reply),
    };
    if options.hop_headers && !fail && !faulted {
        hops::insert_hop_headers(response.headers_mut(), timing);
    }
    // NGINX's own error pages carry no route: no Envoy route was taken.
    let route = route.filter(|_| !(fail && origin == hops::ErrorOrigin::Ingress));
    if let Some(label) = route {
        if let Ok(value) = http::HeaderValue::try_from(format!(":{label}:")) {
            response.headers_mut().insert("x-seldon-route", value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_paths() {
        assert!(matches!(
            route("/v2/models/m/infer"),
            Some(Endpoint::Infer("m"))
        ));
        assert!(matches!(
            route("/v2/models/m/versions/3/infer"),
            Some(Endpoint::Infer("m"))
        ));
        assert!(matches!(
            route("/v2/models/m/ready"),
            Some(Endpoint::ModelReady("m"))
        ));
        assert!(matches!(
            route("/v2/models/m"),
            Some(Endpoint::ModelMetadata("m"))
        ));
        assert!(matches!(route("/v2"), Some(Endpoint::ServerMetadata)));
        assert!(matches!(route("/v2/health/ready"), Some(Endpoint::Ready)));
        assert!(route("/v1/models/m").is_none());
        assert!(route("/v2/models/m/explain").is_none());
    }

    #[test]
    fn route_weights_parse() {
        let routes: RouteWeights = "a_1=70, b_1=30".parse().unwrap();
        assert_eq!(routes.0, vec![("a_1".into(), 70.0), ("b_1".into(), 30.0)]);
        assert!("a_1".parse::<RouteWeights>().is_err());
        assert!("a_1=-1".parse::<RouteWeights>().is_err());
        assert!("a_1=0".parse::<RouteWeights>().is_err());
    }
}
