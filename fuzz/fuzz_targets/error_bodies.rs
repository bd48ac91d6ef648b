//! Error responses as the recorder counts them: a body of any bytes with any headers, cut to
//! the kept prefix and counted by text, then scrubbed of a secret request header value before
//! it is reported. Nothing may panic, and no reported body may contain the secret.

#![no_main]

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use inferload::redact::{RequestHeaders, REDACTED};
use inferload::stats::{Counts, ErrorKind, Exchange, Failure, PacerCounts, Recorder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Input layout: a secret value, a newline, then the error body. The body echoes the secret
    // around its own bytes, as a gateway that repeats request headers would.
    let Some(newline) = data.iter().position(|b| *b == b'\n') else {
        return;
    };
    let (secret, body) = (&data[..newline], &data[newline + 1..]);
    let Ok(secret_text) = std::str::from_utf8(secret) else {
        return;
    };
    let Ok(value) = HeaderValue::from_bytes(secret) else {
        return;
    };
    let mut request_headers = RequestHeaders::default();
    request_headers.insert(HeaderName::from_static("x-api-key"), value, &[]);

    let mut echoed = body.to_vec();
    echoed.extend_from_slice(secret);
    echoed.extend_from_slice(body);
    echoed.extend_from_slice(secret);

    let route = HeaderName::from_static("x-seldon-route");
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(&body[..body.len().min(32)]) {
        headers.insert(route.clone(), value);
    }
    let recorder = Recorder::new(1, route);
    let now = Instant::now();
    recorder.record(
        0,
        &Exchange {
            intended: now,
            sent: now,
            finished: now,
            measured: true,
            connect: None,
            result: Err(Failure {
                kind: ErrorKind::Http5xx,
                status: Some(503),
                headers: Some(headers),
                body: Some(Bytes::from(echoed)),
            }),
        },
    );
    let mut counts = Counts::default();
    recorder.drain_into(&mut counts, &mut PacerCounts::default());
    assert_eq!(counts.error_total(), 1);
    let top = counts.error_bodies.top();
    assert_eq!(top.len(), 1);

    let scrubbed = request_headers.scrub(&top[0].0);
    // Values of 4 bytes or less are not redacted, and a value that overlaps the marker's own
    // text can reappear beside it.
    let checkable = secret_text.trim().len() > 4
        && !secret_text.contains(['[', ']'])
        && !REDACTED.contains(secret_text.trim());
    if checkable {
        assert!(
            !scrubbed.contains(secret_text.trim()),
            "secret {secret_text:?} in {scrubbed:?}"
        );
    }
});
