//! The validated run plan: what one run does, with every value checked and every default filled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::Uri;

use super::stages::{self, StageLoad, StagePlan};
use super::units::{HumanDuration, Rate, ReleaseGap};
use super::{PayloadPlan, Scenario, ScenarioError};
use crate::redact::RequestHeaders;
use crate::serve::ServeOptions;

/// Command-line values that replace the scenario's.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub url: Option<String>,
    pub rate: Option<Rate>,
    pub concurrency: Option<u32>,
    pub duration: Option<HumanDuration>,
    pub warmup: Option<HumanDuration>,
    pub connections: Option<u32>,
    pub max_in_flight: Option<u32>,
    pub timeout: Option<HumanDuration>,
    /// `NAME: VALUE` pairs from `-H`, added to (or replacing) the scenario's headers.
    pub headers: Vec<String>,
    pub out: Option<PathBuf>,
    /// Gates from `--gate`, added to the scenario's.
    pub gates: Vec<String>,
    /// `--requests-csv`: write one row per request.
    pub requests_csv: bool,
    pub stop_grace: Option<HumanDuration>,
    pub release_gap: Option<ReleaseGap>,
    /// HTTP version and TLS options.
    pub connection: super::connection::ConnectionOverrides,
}

/// Protocol that carries requests to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http1,
    /// REST over HTTP/2: h2c with prior knowledge, or h2 over TLS.
    Http2,
    Grpc,
}

/// Settings of the gRPC transport.
#[derive(Debug, Clone)]
pub struct GrpcPlan {
    pub streams_per_connection: u32,
    pub max_send_message_size: u64,
    pub max_receive_message_size: u64,
}

/// The default gRPC message size limit, as in the gRPC libraries.
const DEFAULT_GRPC_MESSAGE_SIZE: u64 = 4 * 1024 * 1024;

/// The target of a run.
#[derive(Debug, Clone)]
pub struct TargetPlan {
    /// `None` until an embedded target has been started and its address is known.
    pub base: Option<Uri>,
    /// Options of the in-process target, when the scenario uses `url = "embedded"`.
    pub embedded: Option<ServeOptions>,
    pub model: String,
    pub version: Option<String>,
    pub transport: Transport,
    /// Host header sent in place of the URL's authority.
    pub host: Option<String>,
    /// Extra request headers; secret values are hidden from every output.
    pub headers: RequestHeaders,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_response_body: u64,
    pub preflight: bool,
    pub grpc: GrpcPlan,
    /// Settings of REST over HTTP/2.
    pub http2: super::connection::Http2Plan,
    /// TLS settings; set exactly when the URL is `https://`.
    pub tls: Option<super::connection::TlsPlan>,
    /// True when the HTTP version of REST requests is chosen by ALPN before the load
    /// (`https://` without an explicit version); `transport` is then replaced by the choice.
    pub negotiate_http: bool,
}

impl TargetPlan {
    /// Path and query of `/v2/models/{model}[/versions/{v}]{suffix}` under the base URL.
    pub fn model_path(&self, suffix: &str) -> String {
        let prefix = self
            .base
            .as_ref()
            .map(|b| b.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        match &self.version {
            Some(v) => format!("{prefix}/v2/models/{}/versions/{v}{suffix}", self.model),
            None => format!("{prefix}/v2/models/{}{suffix}", self.model),
        }
    }

    /// Path of a server-level endpoint such as `/v2/health/ready` under the base URL.
    pub fn server_path(&self, suffix: &str) -> String {
        let prefix = self
            .base
            .as_ref()
            .map(|b| b.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        format!("{prefix}/v2{suffix}")
    }
}

/// When requests are issued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoadMode {
    /// Open loop: requests at `rate` per second on absolute deadlines.
    Open { rate: f64, arrival: Arrival },
    /// Closed loop: `concurrency` requests always in flight.
    Closed { concurrency: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    Constant,
    Poisson { seed: u64 },
}

/// Policy for a request that falls due while `max_in_flight` requests are outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtCapacity {
    Wait,
    Drop,
}

#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub mode: LoadMode,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: u32,
    pub max_in_flight: u32,
    pub at_cap: AtCapacity,
    /// How long a first stop signal waits for requests in flight before the run ends.
    pub stop_grace: Duration,
    /// Shortest time between two wake-ups of the open-loop pacer.
    pub release_gap: ReleaseGap,
    /// Stages after the warm-up; empty for a single rate or concurrency. With stages, `mode`
    /// holds the mean rate over the stages (open loop) or the highest concurrency (closed
    /// loop), and `duration` their total.
    pub stages: Vec<StagePlan>,
}

#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// The run's own folder; created when the run starts.
    pub run_dir: PathBuf,
    pub interval: Duration,
    /// Write `requests.csv` with one row per request.
    pub requests_csv: bool,
}

/// Everything one run needs, checked before the run starts.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub name: String,
    pub scenario_path: PathBuf,
    pub target: TargetPlan,
    pub payload: PayloadPlan,
    pub load: LoadPlan,
    pub route_header: HeaderName,
    /// Hops of the latency breakdown, outside in.
    pub hops: Vec<crate::stats::HopSpec>,
    pub split: Option<crate::stats::split::ExpectedSplit>,
    pub model_metrics: Option<crate::metrics::MetricsPlan>,
    pub output: OutputPlan,
    /// SLO gates: the scenario's, then those from `--gate`.
    pub gates: Vec<crate::gate::Gate>,
}

const DEFAULT_DURATION: Duration = Duration::from_secs(30);
const DEFAULT_CONNECTIONS: u32 = 8;
const DEFAULT_MAX_IN_FLIGHT: u32 = 1024;

/// Most connections, closed-loop concurrency or requests in flight a plan may ask for. Each
/// connection is a socket and a task, and each request in flight a queue slot in this one
/// process, so a mistyped value in the millions would exhaust memory before the first request.
pub const MAX_SENDERS: u32 = 100_000;

/// Returns an error naming `key` when `value` is above [`MAX_SENDERS`].
fn check_senders(
    invalid: &dyn Fn(&str, String) -> ScenarioError,
    key: &str,
    value: u32,
) -> Result<(), ScenarioError> {
    if value > MAX_SENDERS {
        return Err(invalid(
            key,
            format!(
                "= {value} is above the limit of {MAX_SENDERS}; use at most {MAX_SENDERS} \
                 (each one costs memory in this process), or run several inferload processes"
            ),
        ));
    }
    Ok(())
}

impl RunPlan {
    /// Checks a parsed scenario with its overrides and fills every default.
    pub fn build(
        scenario: Scenario,
        path: &Path,
        overrides: &Overrides,
    ) -> Result<RunPlan, ScenarioError> {
        let invalid = |key: &str, message: String| ScenarioError::Invalid {
            path: path.to_owned(),
            key: key.to_string(),
            message,
        };
        let base_dir = path.parent().unwrap_or(Path::new("."));

        let name = scenario.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into())
        });
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(invalid(
                "name",
                format!("= {name:?} cannot name a results folder; use letters, digits, - and _"),
            ));
        }

        let mut target = build_target(&scenario, overrides, &invalid)?;
        super::connection::apply(
            &scenario,
            &overrides.connection,
            base_dir,
            &mut target,
            &invalid,
        )?;
        let payload = super::payload::build(&scenario, &target, base_dir, &invalid)?;
        let load = build_load(&scenario, overrides, target.timeout, &invalid)?;
        let gates = build_gates(&scenario, overrides, &load, &invalid)?;

        let route_header_text = scenario
            .routes
            .header
            .as_deref()
            .unwrap_or("x-seldon-route");
        let route_header = HeaderName::try_from(route_header_text.trim().to_ascii_lowercase())
            .map_err(|_| {
                invalid(
                    "routes.header",
                    format!("= {route_header_text:?} is not a valid header name"),
                )
            })?;

        let hops = super::breakdown::build_hops(&scenario.hops, &invalid)?;
        let split = super::breakdown::build_split(&scenario.routes, base_dir, &invalid)?;
        let model_metrics = super::breakdown::build_model_metrics(
            scenario.model_metrics.as_ref(),
            &hops,
            &invalid,
        )?;

        let interval = scenario
            .output
            .interval
            .map(|d| d.0)
            .unwrap_or(Duration::from_secs(1));
        if interval < Duration::from_millis(100) {
            return Err(invalid(
                "output.interval",
                format!("= {:?} is shorter than 100ms; use 1s", interval),
            ));
        }
        let run_dir = match &overrides.out {
            Some(dir) => dir.clone(),
            None => {
                let parent = scenario
                    .output
                    .dir
                    .clone()
                    .unwrap_or_else(|| "results".into());
                parent.join(&name).join(utc_timestamp())
            }
        };

        Ok(RunPlan {
            name,
            scenario_path: path.to_owned(),
            target,
            payload,
            load,
            route_header,
            hops,
            split,
            model_metrics,
            output: OutputPlan {
                run_dir,
                interval,
                requests_csv: overrides.requests_csv || scenario.output.requests_csv == Some(true),
            },
            gates,
        })
    }
}

fn build_target(
    scenario: &Scenario,
    overrides: &Overrides,
    invalid: &dyn Fn(&str, String) -> ScenarioError,
) -> Result<TargetPlan, ScenarioError> {
    let section = &scenario.target;
    let url = overrides.url.as_deref().unwrap_or(&section.url).trim();
    let url_key = key_or_flag(overrides.url.is_some(), "target.url", "--url");
    let (base, embedded) = if url == "embedded" {
        (None, Some(section.embedded.clone().unwrap_or_default()))
    } else {
        (
            Some(parse_base_url(url).map_err(|m| invalid(url_key, m))?),
            None,
        )
    };
    if section.model.trim().is_empty() {
        return Err(invalid(
            "target.model",
            "is missing or empty; set the model name used in /v2/models/{model}/infer".into(),
        ));
    }
    if section.model.contains(['/', '?', '#', ' ']) {
        return Err(invalid(
            "target.model",
            format!(
                "= {:?} contains a character not allowed in a URL path segment",
                section.model
            ),
        ));
    }
    if let Some(version) = &section.version {
        if version.trim().is_empty() || version.contains(['/', '?', '#', ' ']) {
            return Err(invalid(
                "target.version",
                format!(
                    "= {version:?} is empty or contains a character not allowed in a URL path \
                     segment; write the version as it appears in /versions/{{version}}, e.g. \"1\""
                ),
            ));
        }
    }
    let transport = match section.transport.as_deref().unwrap_or("http1") {
        "http1" => Transport::Http1,
        "http2" => Transport::Http2,
        "grpc" => Transport::Grpc,
        other => {
            return Err(invalid(
                "target.transport",
                format!("= {other:?} is not a known transport; use http1, http2 or grpc"),
            ))
        }
    };
    let grpc = build_grpc(section.grpc.as_ref(), invalid)?;

    let secret = &section.secret_headers;
    for name in secret {
        HeaderName::try_from(name.trim().to_ascii_lowercase()).map_err(|_| {
            invalid(
                "target.secret_headers",
                format!("= {name:?} is not a valid HTTP header name"),
            )
        })?;
    }
    let mut headers = RequestHeaders::default();
    for (name, value) in &section.headers {
        let (name, value) = parse_header(name, value).map_err(|m| invalid("target.headers", m))?;
        headers.insert(name, value, secret);
    }
    for raw in &overrides.headers {
        let Some((name, value)) = raw.split_once(':') else {
            // Only the first word is shown: the rest may be a credential.
            let mut words = raw.split_whitespace();
            let first_word = words.next().unwrap_or_default();
            let rest = if words.next().is_some() {
                " and the rest (not shown)"
            } else {
                ""
            };
            return Err(invalid(
                "--header",
                format!("= \"{first_word}\"{rest} has no colon; write it as 'NAME: VALUE'"),
            ));
        };
        let (name, value) = parse_header(name, value).map_err(|m| invalid("--header", m))?;
        headers.insert(name, value, secret);
    }
    if transport == Transport::Grpc {
        let reserved = headers.iter().find(|(name, _)| {
            name.as_str().starts_with("grpc-") || name.as_str().ends_with("-bin")
        });
        if let Some((name, _)) = reserved {
            return Err(invalid(
                "target.headers",
                format!(
                    "names {name}, which cannot be sent as gRPC metadata: the grpc- prefix is \
                     reserved and -bin values must be base64; rename or remove it"
                ),
            ));
        }
    }
    if let Some(host) = &section.host {
        // A Host header is an authority without credentials: a host name and an optional port.
        let trimmed = host.trim();
        let valid = !trimmed.is_empty()
            && !trimmed.contains('@')
            && trimmed.parse::<http::uri::Authority>().is_ok();
        if !valid {
            return Err(invalid(
                "target.host",
                format!(
                    "= {host:?} is not a valid Host header value; write a host name with an \
                     optional port, e.g. ml-api.local or ml-api.local:8080"
                ),
            ));
        }
    }

    let timeout = overrides.timeout.or(section.timeout).map(|d| d.0);
    let timeout = timeout.unwrap_or(Duration::from_secs(10));
    if timeout.is_zero() {
        return Err(invalid(
            key_or_flag(overrides.timeout.is_some(), "target.timeout", "--timeout"),
            "= 0 would fail every request; use e.g. 5s".into(),
        ));
    }
    let connect_timeout = section
        .connect_timeout
        .map(|d| d.0)
        .unwrap_or(Duration::from_secs(3));
    if connect_timeout.is_zero() {
        return Err(invalid(
            "target.connect_timeout",
            "= 0 would fail every connection; use e.g. 3s".into(),
        ));
    }
    let max_response_body = section
        .max_response_body
        .map(|b| b.0)
        .unwrap_or(4 * 1024 * 1024);
    if max_response_body == 0 {
        return Err(invalid(
            "target.max_response_body",
            "= 0 would reject every response; use e.g. 4MiB".into(),
        ));
    }
    Ok(TargetPlan {
        base,
        embedded,
        model: section.model.trim().to_string(),
        version: section.version.clone(),
        transport,
        host: section.host.as_ref().map(|h| h.trim().to_string()),
        headers,
        timeout,
        connect_timeout,
        max_response_body,
        preflight: section.preflight.unwrap_or(true),
        grpc,
        http2: super::connection::Http2Plan {
            streams_per_connection: 100,
        },
        tls: None,
        negotiate_http: false,
    })
}

/// Parses a base URL such as `http://127.0.0.1:8080/prefix`, with a message naming the fix.
pub fn parse_base_url(url: &str) -> Result<Uri, String> {
    // Credentials in the URL would be echoed in messages and written to summary.json.
    if let Some((before, _)) = url.split_once('@') {
        let scheme_end = before.find("://").map_or(0, |i| i + 3);
        if !before[scheme_end..].contains('/') {
            return Err(format!(
                "= \"{}<credentials>@...\" contains credentials; remove them from the URL and \
                 send them as a header, e.g. [target.headers] authorization = \"Basic ...\"",
                &before[..scheme_end]
            ));
        }
    }
    let uri: Uri = url.parse().map_err(|e| {
        format!("= {url:?} is not a valid URL ({e}); write e.g. http://127.0.0.1:8080")
    })?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "= {url:?} uses scheme `{other}`, which this build does not support; use \
                 http:// or https://"
            ))
        }
        None => return Err(format!("= {url:?} has no scheme; write e.g. http://{url}")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!(
            "= {url:?} has no host; write e.g. http://127.0.0.1:8080"
        ));
    }
    if uri.query().is_some() {
        return Err(format!(
            "= {url:?} has a query string; give only the base URL before /v2"
        ));
    }
    if uri.path().contains("/v2/") || uri.path().ends_with("/v2") {
        return Err(format!(
            "= {url:?} includes the /v2 path; give only the base URL before /v2, the model \
             comes from target.model"
        ));
    }
    Ok(uri)
}

fn parse_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let header_name = HeaderName::try_from(name.trim().to_ascii_lowercase()).map_err(|_| {
        format!(
            "header name {name:?} is not a valid HTTP header name; use letters, digits and \
                 -, e.g. x-request-id"
        )
    })?;
    // The value is not shown, because it may be a credential.
    let header_value = HeaderValue::try_from(value.trim()).map_err(|_| {
        format!(
            "value of header {name:?} contains a control character (such as a newline) that \
             HTTP does not allow; remove it"
        )
    })?;
    Ok((header_name, header_value))
}

fn build_grpc(
    section: Option<&super::GrpcSection>,
    invalid: &dyn Fn(&str, String) -> ScenarioError,
) -> Result<GrpcPlan, ScenarioError> {
    let default = super::GrpcSection::default();
    let section = section.unwrap_or(&default);
    let streams = section.streams_per_connection.unwrap_or(100);
    if streams == 0 {
        return Err(invalid(
            "target.grpc.streams_per_connection",
            "= 0; use 1 or more (default 100)".into(),
        ));
    }
    let size = |value: Option<super::units::ByteSize>, key: &str| {
        let bytes = value.map_or(DEFAULT_GRPC_MESSAGE_SIZE, |b| b.0);
        if bytes == 0 || bytes > u32::MAX as u64 {
            return Err(invalid(
                key,
                format!("= {bytes} bytes is outside 1 byte..4GiB; use e.g. \"16MiB\""),
            ));
        }
        Ok(bytes)
    };
    Ok(GrpcPlan {
        streams_per_connection: streams,
        max_send_message_size: size(
            section.max_send_message_size,
            "target.grpc.max_send_message_size",
        )?,
        max_receive_message_size: size(
            section.max_receive_message_size,
            "target.grpc.max_receive_message_size",
        )?,
    })
}

fn build_gates(
    scenario: &Scenario,
    overrides: &Overrides,
    load: &LoadPlan,
    invalid: &dyn Fn(&str, String) -> ScenarioError,
) -> Result<Vec<crate::gate::Gate>, ScenarioError> {
    let mut gates = match &scenario.gates {
        Some(value) => crate::gate::from_toml(value).map_err(|m| invalid("gates", m))?,
        None => Vec::new(),
    };
    for text in &overrides.gates {
        let gate = crate::gate::Gate::parse(text).map_err(|e| invalid("--gate", e.to_string()))?;
        gates.push(gate);
    }
    let open_loop = matches!(load.mode, LoadMode::Open { .. });
    for gate in &gates {
        gate.check_plan(open_loop)
            .map_err(|e| invalid("gates", e.to_string()))?;
    }
    Ok(gates)
}

/// Longest default wait for requests in flight after a first stop signal.
const MAX_DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

fn build_load(
    scenario: &Scenario,
    overrides: &Overrides,
    timeout: Duration,
    invalid: &dyn Fn(&str, String) -> ScenarioError,
) -> Result<LoadPlan, ScenarioError> {
    let section = &scenario.load;
    // A rate on the command line replaces a scenario's concurrency and the other way round.
    let (rate, concurrency) = match (overrides.rate, overrides.concurrency) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "--rate/--concurrency",
                "both given; choose an open-loop rate or a closed-loop concurrency".into(),
            ))
        }
        (Some(rate), None) => (Some(rate), None),
        (None, Some(concurrency)) => (None, Some(concurrency)),
        (None, None) => (section.rate, section.concurrency),
    };
    let arrival = match section.arrival.as_deref().unwrap_or("constant") {
        "constant" => Arrival::Constant,
        "poisson" => Arrival::Poisson {
            seed: section.seed.unwrap_or(1),
        },
        other => {
            return Err(invalid(
                "load.arrival",
                format!("= {other:?} is not an arrival process; use constant or poisson"),
            ))
        }
    };
    let staged = overrides.rate.is_none() && overrides.concurrency.is_none();
    let stages = if staged {
        stages::build_stages(&section.stages, invalid)?
    } else {
        Vec::new()
    };
    if !stages.is_empty() {
        if section.rate.is_some() || section.concurrency.is_some() {
            return Err(invalid(
                "load.stages",
                "is set together with load.rate or load.concurrency; keep the stages or the \
                 single load, not both"
                    .into(),
            ));
        }
        if overrides.duration.is_some() || section.duration.is_some() {
            return Err(invalid(
                "load.duration",
                "does not apply to a staged load; each stage has its own duration".into(),
            ));
        }
    }
    let mode = match stages.first().map(|s| s.load) {
        Some(StageLoad::Rate { .. }) => {
            let seconds: f64 = stages.iter().map(|s| s.duration.as_secs_f64()).sum();
            let count: f64 = stages
                .iter()
                .map(|s| match s.load {
                    StageLoad::Rate { from, to } => (from + to) / 2.0 * s.duration.as_secs_f64(),
                    StageLoad::Concurrency(_) => 0.0,
                })
                .sum();
            Some(LoadMode::Open {
                rate: count / seconds,
                arrival,
            })
        }
        Some(StageLoad::Concurrency(_)) => Some(LoadMode::Closed {
            concurrency: stages
                .iter()
                .map(|s| match s.load {
                    StageLoad::Concurrency(n) => n,
                    StageLoad::Rate { .. } => 0,
                })
                .max()
                .unwrap_or(1),
        }),
        None => None,
    };
    let mode = match mode {
        Some(mode) => mode,
        None => match (rate, concurrency) {
            (Some(_), Some(_)) => return Err(invalid(
                "load.rate",
                "and load.concurrency are both set; keep rate for open loop or concurrency for \
                 closed loop"
                    .into(),
            )),
            (Some(rate), None) => LoadMode::Open {
                rate: rate.per_second(),
                arrival,
            },
            (None, Some(0)) => {
                return Err(invalid(
                    key_or_flag(
                        overrides.concurrency.is_some(),
                        "load.concurrency",
                        "--concurrency",
                    ),
                    "= 0; use 1 or more".into(),
                ));
            }
            (None, Some(_)) if section.arrival.is_some() && overrides.concurrency.is_none() => {
                return Err(invalid(
                    "load.arrival",
                    "applies to open-loop rates only, but this scenario is closed loop \
                     (load.concurrency); remove load.arrival or set load.rate instead"
                        .into(),
                ));
            }
            (None, Some(concurrency)) => {
                check_senders(
                    invalid,
                    key_or_flag(
                        overrides.concurrency.is_some(),
                        "load.concurrency",
                        "--concurrency",
                    ),
                    concurrency,
                )?;
                LoadMode::Closed { concurrency }
            }
            (None, None) => {
                return Err(invalid(
                    "load.rate",
                    "is missing; set a rate such as \"250/s\" or a closed-loop concurrency".into(),
                ))
            }
        },
    };

    let duration = if stages.is_empty() {
        overrides
            .duration
            .or(section.duration)
            .map(|d| d.0)
            .unwrap_or(DEFAULT_DURATION)
    } else {
        stages.iter().map(|s| s.duration).sum()
    };
    if duration.is_zero() {
        return Err(invalid(
            key_or_flag(overrides.duration.is_some(), "load.duration", "--duration"),
            "= 0; use a positive duration such as 30s".into(),
        ));
    }
    if let LoadMode::Open { rate, .. } = mode {
        // Shorter than the gap between two requests: at most the first request is sent, and
        // the achieved rate over such a window means nothing.
        let gap = Duration::from_secs_f64(1.0 / rate);
        if duration < gap {
            return Err(invalid(
                key_or_flag(overrides.duration.is_some(), "load.duration", "--duration"),
                format!(
                    "= {} is shorter than the {} between two requests at {rate}/s; use a \
                     duration of at least {} or a higher rate",
                    HumanDuration(duration),
                    HumanDuration(gap),
                    HumanDuration(gap)
                ),
            ));
        }
    }
    let warmup = overrides
        .warmup
        .or(section.warmup)
        .map(|d| d.0)
        .unwrap_or(Duration::ZERO);

    let connections = overrides
        .connections
        .or(section.connections)
        .unwrap_or(match mode {
            LoadMode::Closed { concurrency } => concurrency,
            LoadMode::Open { .. } => DEFAULT_CONNECTIONS,
        });
    if connections == 0 {
        return Err(invalid(
            key_or_flag(
                overrides.connections.is_some(),
                "load.connections",
                "--connections",
            ),
            "= 0; use 1 or more".into(),
        ));
    }
    check_senders(
        invalid,
        key_or_flag(
            overrides.connections.is_some(),
            "load.connections",
            "--connections",
        ),
        connections,
    )?;
    let max_in_flight = overrides
        .max_in_flight
        .or(section.max_in_flight)
        .unwrap_or(DEFAULT_MAX_IN_FLIGHT.max(connections));
    check_senders(
        invalid,
        key_or_flag(
            overrides.max_in_flight.is_some(),
            "load.max_in_flight",
            "--max-in-flight",
        ),
        max_in_flight,
    )?;
    if max_in_flight == 0 {
        return Err(invalid(
            key_or_flag(
                overrides.max_in_flight.is_some(),
                "load.max_in_flight",
                "--max-in-flight",
            ),
            "= 0; use 1 or more".into(),
        ));
    }
    let at_cap = match section.at_cap.as_deref().unwrap_or("wait") {
        "wait" => AtCapacity::Wait,
        "drop" => AtCapacity::Drop,
        other => {
            return Err(invalid(
                "load.at_cap",
                format!("= {other:?} is not a policy; use wait or drop"),
            ))
        }
    };
    let stop_grace = overrides
        .stop_grace
        .or(section.stop_grace)
        .map(|d| d.0)
        .unwrap_or(timeout.min(MAX_DEFAULT_STOP_GRACE));
    let release_gap = overrides
        .release_gap
        .or(section.release_gap)
        .unwrap_or_default();
    Ok(LoadPlan {
        mode,
        duration,
        warmup,
        connections,
        max_in_flight,
        at_cap,
        stop_grace,
        release_gap,
        stages,
    })
}

/// Names the flag in messages when the command line gave the value, else the scenario key.
fn key_or_flag(from_flag: bool, key: &'static str, flag: &'static str) -> &'static str {
    if from_flag {
        flag
    } else {
        key
    }
}

/// Returns the current UTC time as `YYYYMMDDTHHMMSSZ`, for results folder names.
pub fn utc_timestamp() -> String {
    let text = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    text.replace(['-', ':'], "")
}
