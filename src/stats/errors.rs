//! Error kinds: every failed request is counted under exactly one.

use serde::Serialize;

/// Cause of a failed request, counted by kind and never by message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The target refused the TCP connection.
    ConnectRefused,
    /// The TCP connect did not finish within the connect timeout.
    ConnectTimeout,
    /// Any other connect failure (unreachable host, DNS).
    ConnectFailed,
    /// The connection was reset or closed before the response ended.
    Reset,
    /// No complete response within the request timeout.
    Timeout,
    /// HTTP 4xx.
    #[serde(rename = "http_4xx")]
    Http4xx,
    /// HTTP 5xx.
    #[serde(rename = "http_5xx")]
    Http5xx,
    /// A response that is not valid HTTP or protocol framing.
    InvalidResponse,
    /// A response body larger than the configured limit.
    BodyTooLarge,
    /// gRPC status UNAVAILABLE (14).
    GrpcUnavailable,
    /// gRPC status RESOURCE_EXHAUSTED (8), e.g. a message over the peer's size limit.
    GrpcResourceExhausted,
    /// gRPC status DEADLINE_EXCEEDED (4), sent by the server or a proxy for `grpc-timeout`.
    GrpcDeadlineExceeded,
    /// gRPC status UNIMPLEMENTED (12); Envoy answers it when no route matches.
    GrpcUnimplemented,
    /// gRPC status INVALID_ARGUMENT (3).
    GrpcInvalidArgument,
    /// gRPC status NOT_FOUND (5), e.g. an unknown model.
    GrpcNotFound,
    /// gRPC status INTERNAL (13).
    GrpcInternal,
    /// Any other non-OK gRPC status.
    GrpcOther,
    /// A successful response whose outputs do not match the expected names, shapes or
    /// datatypes (response validation).
    InvalidOutput,
    /// A failed TLS handshake or a TLS alert from the server (unknown issuer, name mismatch,
    /// client certificate required, no common ALPN protocol, ...); the reason is kept as the
    /// error body.
    Tls,
}

impl ErrorKind {
    pub const COUNT: usize = 19;
    pub const ALL: [ErrorKind; Self::COUNT] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::ConnectFailed,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Http4xx,
        ErrorKind::Http5xx,
        ErrorKind::InvalidResponse,
        ErrorKind::BodyTooLarge,
        ErrorKind::GrpcUnavailable,
        ErrorKind::GrpcResourceExhausted,
        ErrorKind::GrpcDeadlineExceeded,
        ErrorKind::GrpcUnimplemented,
        ErrorKind::GrpcInvalidArgument,
        ErrorKind::GrpcNotFound,
        ErrorKind::GrpcInternal,
        ErrorKind::GrpcOther,
        ErrorKind::InvalidOutput,
        ErrorKind::Tls,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Returns the snake_case name used in reports and `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::GrpcUnavailable => "grpc_unavailable",
            ErrorKind::GrpcResourceExhausted => "grpc_resource_exhausted",
            ErrorKind::GrpcDeadlineExceeded => "grpc_deadline_exceeded",
            ErrorKind::GrpcUnimplemented => "grpc_unimplemented",
            ErrorKind::GrpcInvalidArgument => "grpc_invalid_argument",
            ErrorKind::GrpcNotFound => "grpc_not_found",
            ErrorKind::GrpcInternal => "grpc_internal",
            ErrorKind::GrpcOther => "grpc_other",
            ErrorKind::InvalidOutput => "invalid_output",
            ErrorKind::Tls => "tls",
        }
    }

    /// Whether the connection that saw this error must be replaced before the next request.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectRefused
                | ErrorKind::ConnectTimeout
                | ErrorKind::ConnectFailed
                | ErrorKind::Reset
                | ErrorKind::Timeout
                | ErrorKind::InvalidResponse
                | ErrorKind::BodyTooLarge
                | ErrorKind::Tls
        )
    }

    /// Whether this kind is a gRPC status.
    pub fn is_grpc_status(self) -> bool {
        self.name().starts_with("grpc_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_table() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
    }

    #[test]
    fn names_are_unique() {
        let names: std::collections::HashSet<_> = ErrorKind::ALL.map(ErrorKind::name).into();
        assert_eq!(names.len(), ErrorKind::COUNT);
    }

    #[test]
    fn names_match_serde() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
    }
}
