//! Parsers of target responses: route headers, hop times (NGINX seconds, Envoy milliseconds,
//! `Server-Timing`), the origin of error responses, body edges and the scrubbing of error
//! bodies. Nothing may panic, body edges must not depend on how the body is split into frames,
//! and a scrubbed body must keep no secret.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use inferload::redact::RequestHeaders;
use inferload::stats::hops::{read_hop, HopFormat, HopReading, HopSpec, MAX_HOP_MICROS};
use inferload::stats::origin::classify;
use inferload::stats::routes::route_label;
use inferload::transport::http1::BodyEdges;
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "sk-fuzz-secret-0123";

fuzz_target!(|data: &[u8]| {
    let route = HeaderName::from_static("x-seldon-route");
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n').take(8) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(route.clone(), value);
        }
    }
    let label = route_label(&headers, &route);
    assert!(!label.is_empty());

    let hop_header = HeaderName::from_static("x-hop");
    let mut hop_headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n').take(4) {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            hop_headers.append(hop_header.clone(), value);
        }
    }
    let formats = [
        HopFormat::Seconds,
        HopFormat::Milliseconds,
        HopFormat::ServerTiming {
            metric: "model".into(),
        },
    ];
    let mut specs = Vec::new();
    for format in formats {
        let spec = HopSpec {
            name: "hop".into(),
            header: hop_header.clone(),
            format,
            origin_when_missing: None,
        };
        if let HopReading::Present(time) = read_hop(&hop_headers, &spec) {
            assert!(time.micros <= MAX_HOP_MICROS);
        }
        specs.push(spec);
    }
    let _ = classify(&hop_headers, data, &specs);

    let mut whole = BodyEdges::default();
    whole.update(data);
    let mut pieces = BodyEdges::default();
    for chunk in data.chunks(7) {
        pieces.update(chunk);
    }
    assert_eq!(whole, pieces);

    let mut request_headers = RequestHeaders::default();
    request_headers.insert(
        HeaderName::from_static("authorization"),
        HeaderValue::from_static(SECRET),
        &[],
    );
    let text = String::from_utf8_lossy(data);
    let echoed = format!("{text}{SECRET}{text}");
    assert!(!request_headers.scrub(&echoed).contains(SECRET));
});
