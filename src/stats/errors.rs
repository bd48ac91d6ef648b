//! Error kinds: every failed request is counted under exactly one.

use serde::Serialize;

/// Why a request failed. Counted by kind, never by message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The target refused the TCP connection.
    ConnectRefused,
    /// The TCP connect did not finish within the connect timeout.
    ConnectTimeout,
    /// Any other connect failure (unreachable host, DNS, TLS handshake).
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
}

impl ErrorKind {
    pub const COUNT: usize = 9;
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
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name used in reports and `summary.json`.
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
        }
    }

    /// Whether the connection that saw this error must be replaced before the next request.
    pub fn closes_connection(self) -> bool {
        !matches!(self, ErrorKind::Http4xx | ErrorKind::Http5xx)
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
    fn names_match_serde() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
    }
}
