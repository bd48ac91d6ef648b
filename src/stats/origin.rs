//! Which part of the chain produced an error response: the ingress (NGINX), the mesh (Envoy) or
//! the model server.
//!
//! The evidence, in the order it is used:
//! 1. Hop headers: the outermost configured hop whose header is missing and that names the part
//!    responding in that case (`origin` of a `[[hops]]` entry). Behind NGINX this is the only way
//!    to tell an Envoy reply, because NGINX replaces the `server` header with its own.
//! 2. `server: envoy` is the mesh.
//! 3. `x-envoy-upstream-service-time` (Envoy forwarded the upstream's reply) or a JSON object
//!    body (`{"error": ...}`, as MLServer 1.7 writes) is the model server.
//! 4. `server: nginx` with an HTML body is the ingress.
//! 5. Any other `server` (uvicorn, triton, ...) with a non-HTML body is the model server.
//!
//! Anything else is [`Origin::Unknown`]. Failures without a response (connect errors, resets,
//! timeouts) have no origin.

use http::header::SERVER;
use http::HeaderMap;

use super::hops::{read_hop, HopReading, HopSpec};

/// The part of the chain that produced a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The ingress proxy (NGINX).
    Ingress,
    /// The service mesh (Envoy).
    Mesh,
    /// The model server.
    Model,
    /// Not enough evidence to tell.
    Unknown,
}

impl Origin {
    pub const COUNT: usize = 4;
    pub const ALL: [Origin; Self::COUNT] = [
        Origin::Ingress,
        Origin::Mesh,
        Origin::Model,
        Origin::Unknown,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Returns the snake_case name used in scenarios, reports and `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Ingress => "ingress",
            Origin::Mesh => "mesh",
            Origin::Model => "model",
            Origin::Unknown => "unknown",
        }
    }

    /// Parses a name written by [`Origin::name`], except `unknown`.
    pub fn parse(text: &str) -> Option<Origin> {
        [Origin::Ingress, Origin::Mesh, Origin::Model]
            .into_iter()
            .find(|origin| origin.name() == text)
    }
}

/// Classifies an error response from its headers, the first bytes of its body and the
/// configured hops.
pub fn classify(headers: &HeaderMap, body: &[u8], hops: &[HopSpec]) -> Origin {
    for spec in hops {
        if let Some(origin) = spec.origin_when_missing {
            if read_hop(headers, spec) == HopReading::Missing {
                return origin;
            }
        }
    }

    let server = headers
        .get(SERVER)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    let starts_with = |prefix: &[u8]| {
        server.len() >= prefix.len() && server[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    if starts_with(b"envoy") {
        return Origin::Mesh;
    }

    let body = body.trim_ascii_start();
    if headers.contains_key("x-envoy-upstream-service-time") || body.starts_with(b"{") {
        return Origin::Model;
    }
    let html = body.len() >= 5
        && (body[..5].eq_ignore_ascii_case(b"<html") || body[..5].eq_ignore_ascii_case(b"<!doc"));
    if starts_with(b"nginx") {
        return if html {
            Origin::Ingress
        } else {
            Origin::Unknown
        };
    }
    if !server.is_empty() && !html {
        return Origin::Model;
    }
    Origin::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::hops::HopFormat;
    use http::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const NGINX_404: &[u8] = b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n\
        <center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n";

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

    #[test]
    fn direct_responses() {
        let nginx = headers(&[("server", "nginx/1.22.1")]);
        assert_eq!(classify(&nginx, NGINX_404, &[]), Origin::Ingress);
        let envoy = headers(&[("server", "envoy")]);
        assert_eq!(classify(&envoy, b"", &[]), Origin::Mesh);
        assert_eq!(classify(&envoy, b"no healthy upstream", &[]), Origin::Mesh);
        let uvicorn = headers(&[("server", "uvicorn")]);
        assert_eq!(
            classify(&uvicorn, br#"{"error":"Model x not found"}"#, &[]),
            Origin::Model
        );
        assert_eq!(
            classify(&uvicorn, b"Internal Server Error", &[]),
            Origin::Model
        );
        assert_eq!(classify(&HeaderMap::new(), b"", &[]), Origin::Unknown);
        assert_eq!(classify(&nginx, b"", &[]), Origin::Unknown);
    }

    #[test]
    fn through_nginx_with_hops() {
        let hops = testbed_hops();
        // Envoy's own 404 (no route for seldon-model) as NGINX passes it on.
        let mesh_404 = headers(&[
            ("server", "nginx/1.22.1"),
            ("x-nginx-upstream-header-time", "0.001"),
            ("x-nginx-request-time", "0.000"),
        ]);
        assert_eq!(classify(&mesh_404, b"", &hops), Origin::Mesh);
        // NGINX's default server: no timing headers at all.
        let ingress_404 = headers(&[("server", "nginx/1.22.1")]);
        assert_eq!(classify(&ingress_404, NGINX_404, &hops), Origin::Ingress);
        // NGINX could not reach Envoy: `-` for the upstream time.
        let ingress_502 = headers(&[
            ("server", "nginx/1.22.1"),
            ("x-nginx-upstream-header-time", "-"),
            ("x-nginx-request-time", "0.000"),
        ]);
        assert_eq!(classify(&ingress_502, NGINX_404, &hops), Origin::Ingress);
        // MLServer's JSON error passed through Envoy and NGINX.
        let model_400 = headers(&[
            ("server", "nginx/1.22.1"),
            ("x-envoy-upstream-service-time", "1"),
            ("x-nginx-upstream-header-time", "0.003"),
            ("x-nginx-request-time", "0.003"),
        ]);
        assert_eq!(
            classify(&model_400, br#"{"error":"input is missing"}"#, &hops),
            Origin::Model
        );
    }

    #[test]
    fn names_round_trip() {
        for origin in [Origin::Ingress, Origin::Mesh, Origin::Model] {
            assert_eq!(Origin::parse(origin.name()), Some(origin));
        }
        assert_eq!(Origin::parse("unknown"), None);
        for (i, origin) in Origin::ALL.iter().enumerate() {
            assert_eq!(origin.index(), i);
        }
    }
}
