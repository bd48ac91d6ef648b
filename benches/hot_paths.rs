//! Criterion benchmarks of the per-request work inside inferload: releasing a request from the
//! schedule, building the HTTP/1.1 request, reading the route label from response headers,
//! recording a finished exchange, and one whole keep-alive round trip over loopback per HTTP/1.1
//! lane.
//!
//! `cargo bench --bench hot_paths` measures; `cargo test --release --benches` runs each
//! benchmark once as a smoke test. The comparison against other load generators lives in
//! `benches/peers/`.

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue};

use inferload::scenario::{Overrides, RunPlan, Scenario};
use inferload::schedule::{Constant, Schedule};
use inferload::stats::hops::{read_hop, HopFormat};
use inferload::stats::routes::route_label;
use inferload::stats::{Exchange, HopSpec, Origin, Recorder, Reply};
use inferload::transport::connect::Connector;
use inferload::transport::http1::Http1Transport;
use inferload::transport::http1_raw::RawHttp1Transport;
use inferload::transport::{Job, Lane, Transport};

/// Response head of the canned server; a 400-byte JSON body follows, about the size NGINX sends
/// in the peer comparison.
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: application/json\r\n\
x-seldon-route: :baseline-predictor_3:\r\nContent-Length: 400\r\nConnection: keep-alive\r\n\r\n";

fn route_header() -> HeaderName {
    HeaderName::from_static("x-seldon-route")
}

/// Builds a plan for `url` from the quick-start payload, as `inferload run` would.
fn plan(url: &str) -> RunPlan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bench.toml");
    let text = format!(
        "[target]\nurl = \"{url}\"\nmodel = \"bench\"\n\n[payload]\nfile = \"payloads/quickstart.json\"\n\n\
         [load]\nconcurrency = 1\nduration = \"1s\"\n"
    );
    let scenario = Scenario::from_toml(&text, &path).expect("the bench scenario parses");
    RunPlan::build(scenario, &path, &Overrides::default()).expect("the bench scenario is valid")
}

/// The pacer's work per request: next offset, the job, the hand-off to a lane and the release
/// counters. The receiving side is drained in the same thread, so this is the uncontended cost.
fn release(c: &mut Criterion) {
    let recorder = Recorder::new(4, route_header());
    let (sender, receiver) = flume::bounded::<Job>(1024);
    let start = Instant::now();
    let mut schedule = Constant::new(20_000.0, Duration::from_secs(1_000_000));
    let mut sequence = 0u64;
    c.bench_function("release/constant_schedule_queue_record", |b| {
        b.iter(|| {
            let offset = schedule.next_offset().expect("the schedule is long enough");
            let job = Job {
                intended: start + offset,
                sequence,
                measured: true,
            };
            sequence += 1;
            sender
                .try_send(job)
                .expect("the queue is drained every time");
            recorder.record_release(Duration::from_micros(3), true);
            black_box(receiver.try_recv().expect("a job was queued"))
        })
    });
    c.bench_function("release/instant_now", |b| b.iter(Instant::now));
}

/// Building the HTTP/1.1 request a lane hands to hyper (method, URI, headers, body).
fn encode(c: &mut Criterion) {
    let plan = plan("http://127.0.0.1:9");
    let addr = "127.0.0.1:9".parse().expect("valid address");
    let connector = Connector::new(addr, Duration::from_secs(1));
    let transport = Http1Transport::new(&plan, connector).expect("the transport accepts the plan");
    c.bench_function("encode/http1_request", |b| b.iter(|| transport.request(0)));
}

/// The testbed's timing headers, outermost hop first: NGINX, Envoy as NGINX saw it, MLServer as
/// Envoy saw it.
fn testbed_hops() -> Vec<HopSpec> {
    let hop = |name: &str, header: &'static str, format, origin| HopSpec {
        name: name.into(),
        header: HeaderName::from_static(header),
        format,
        origin_when_missing: Some(origin),
    };
    vec![
        hop(
            "ingress",
            "x-nginx-request-time",
            HopFormat::Seconds,
            Origin::Ingress,
        ),
        hop(
            "mesh",
            "x-nginx-upstream-header-time",
            HopFormat::Seconds,
            Origin::Ingress,
        ),
        hop(
            "model-server",
            "x-envoy-upstream-service-time",
            HopFormat::Milliseconds,
            Origin::Mesh,
        ),
    ]
}

/// Response headers as the testbed chain sends them, route and timing headers included.
fn response_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-nginx-request-time", HeaderValue::from_static("0.004"));
    headers.insert(
        "x-nginx-upstream-header-time",
        HeaderValue::from_static("0.003"),
    );
    headers.insert(
        "x-envoy-upstream-service-time",
        HeaderValue::from_static("2"),
    );
    headers.insert("server", HeaderValue::from_static("nginx/1.22.1"));
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from_static("400"));
    headers.insert(
        "x-seldon-route",
        HeaderValue::from_static(":baseline-predictor_3:"),
    );
    headers
}

/// Reading the route label from response headers, with one token and with a pipeline path.
fn parse_headers(c: &mut Criterion) {
    let header = route_header();
    let single = response_headers();
    let mut pipeline = response_headers();
    pipeline.insert(
        "x-seldon-route",
        HeaderValue::from_static(":a_1::financial.pipeline:"),
    );
    c.bench_function("headers/route_label_single", |b| {
        b.iter(|| route_label(black_box(&single), &header).len())
    });
    c.bench_function("headers/route_label_pipeline", |b| {
        b.iter(|| route_label(black_box(&pipeline), &header).len())
    });
    let hops = testbed_hops();
    c.bench_function("headers/read_three_hops", |b| {
        b.iter(|| {
            for spec in &hops {
                black_box(read_hop(black_box(&single), spec));
            }
        })
    });
}

/// Recording one successful exchange: counters, histograms, status, route and hop entries.
fn record(c: &mut Criterion) {
    let recorder = Recorder::new(4, route_header()).with_hops(testbed_hops());
    let now = Instant::now();
    let headers = response_headers();
    let mut step = 0u64;
    c.bench_function("record/ok_exchange", |b| {
        b.iter_batched(
            || {
                // Spread latencies over 0.2 to 50 ms so the histograms see realistic buckets.
                step = (step + 7919) % 50_000;
                Exchange {
                    intended: now,
                    sent: now + Duration::from_micros(step / 10),
                    finished: now + Duration::from_micros(200 + step),
                    measured: true,
                    connect: None,
                    reconnect: false,
                    result: Ok(Reply {
                        status: 200,
                        headers: headers.clone(),
                        error_body: None,
                    }),
                }
            },
            |exchange| recorder.record(0, &exchange),
            BatchSize::SmallInput,
        )
    });
}

/// Starts a blocking keep-alive HTTP/1.1 server on 127.0.0.1:0 that answers every request with
/// [`RESPONSE`] and a 400-byte JSON body, one thread per connection. It lives as long as the process.
fn canned_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("bound address");
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                return;
            };
            thread::spawn(move || serve_connection(stream));
        }
    });
    addr
}

fn serve_connection(mut stream: std::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    // A JSON object, because lanes count a 2xx reply that is not one as an invalid response.
    let mut reply = RESPONSE.to_vec();
    let prefix = b"{\"model_name\":\"bench\",\"padding\":\"";
    reply.extend_from_slice(prefix);
    reply.extend(std::iter::repeat_n(b'x', 400 - prefix.len() - 2));
    reply.extend_from_slice(b"\"}");
    let mut pending = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let Ok(read) = stream.read(&mut buffer) else {
            return;
        };
        if read == 0 {
            return;
        }
        pending.extend_from_slice(&buffer[..read]);
        while let Some(length) = complete_request(&pending) {
            pending.drain(..length);
            if stream.write_all(&reply).is_err() {
                return;
            }
        }
    }
}

/// Returns the length of the first complete request in `bytes` (head plus Content-Length body).
fn complete_request(bytes: &[u8]) -> Option<usize> {
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
    let body = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    (bytes.len() >= head_end + body).then_some(head_end + body)
}

/// One request and response on a kept-alive loopback connection through an HTTP/1.1 lane, on a
/// current-thread runtime: the client side of what the closed-loop peer comparison measures.
/// `http1_loopback` is the hyper lane (used over TLS), `http1_raw_loopback` the lane `run` uses
/// for `http://` targets.
fn round_trip(c: &mut Criterion) {
    let addr = canned_server();
    let plan = plan(&format!("http://{addr}"));
    let connector = Connector::new(addr, Duration::from_secs(1));
    let prepared = Http1Transport::new(&plan, connector).expect("the transport accepts the plan");
    let raw = Arc::new(RawHttp1Transport::new(&plan, &prepared, addr));
    let hyper = Arc::new(prepared);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // The raw lane arms its timeout timer when it is created, which needs the runtime.
    let _entered = runtime.enter();
    let recorder = Recorder::new(1, route_header());
    let mut sequence = 0u64;
    let mut hyper_lane = hyper.lane(0);
    c.bench_function("round_trip/http1_loopback", |b| {
        b.iter(|| {
            let exchange = runtime.block_on(hyper_lane.send(&next_job(&mut sequence)));
            check_round_trip(&exchange);
            recorder.record(0, &exchange);
        })
    });
    let mut raw_lane = raw.lane(0);
    c.bench_function("round_trip/http1_raw_loopback", |b| {
        b.iter(|| {
            let exchange = runtime.block_on(raw_lane.send(&next_job(&mut sequence)));
            check_round_trip(&exchange);
            recorder.record(0, &exchange);
        })
    });
}

fn next_job(sequence: &mut u64) -> Job {
    *sequence += 1;
    Job {
        intended: Instant::now(),
        sequence: *sequence,
        measured: true,
    }
}

fn check_round_trip(exchange: &Exchange) {
    if let Err(failure) = &exchange.result {
        panic!("round trip to the canned server failed: {:?}", failure.kind);
    }
}

criterion_group!(
    hot_paths,
    release,
    encode,
    parse_headers,
    record,
    round_trip
);
criterion_main!(hot_paths);
