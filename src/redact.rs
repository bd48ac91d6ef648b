//! Secret request header values, kept out of every output.
//!
//! [`RequestHeaders`] is the only place request headers are stored after the scenario is read.
//! It marks secret values as sensitive (`http::HeaderValue::set_sensitive`), whose `Debug` prints
//! `Sensitive`, and its own `Debug` prints `[redacted]` for them, so logs and any `{:?}` of a
//! plan inherit the redaction. Text that came back from the target (error bodies, readiness
//! replies) can echo a credential; [`RequestHeaders::scrub`] replaces secret values in it
//! before it is shown or written.

use std::borrow::Cow;
use std::fmt;

use http::header::{HeaderName, HeaderValue};

/// Printed in place of a secret value.
pub const REDACTED: &str = "[redacted]";

/// Header names whose values are always secret.
const SECRET_NAMES: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
];

/// Parts of a header name that mark an API-key style credential.
const SECRET_PARTS: &[&str] = &["token", "secret", "key", "password", "auth", "credential"];

/// Whether the value of header `name` is secret: a credential header, a name containing
/// `token`, `secret`, `key`, `password`, `auth` or `credential`, or one of `extra` (compared
/// without case).
pub fn is_secret_header(name: &str, extra: &[String]) -> bool {
    let name = name.trim().to_ascii_lowercase();
    SECRET_NAMES.contains(&name.as_str())
        || SECRET_PARTS.iter().any(|part| name.contains(part))
        || extra.iter().any(|e| e.trim().eq_ignore_ascii_case(&name))
}

/// Request headers of a run, with secret values marked.
#[derive(Clone, Default)]
pub struct RequestHeaders {
    entries: Vec<(HeaderName, HeaderValue)>,
}

impl RequestHeaders {
    /// Adds or replaces header `name`; its value is marked sensitive when it is secret.
    pub fn insert(&mut self, name: HeaderName, mut value: HeaderValue, extra_secret: &[String]) {
        if is_secret_header(name.as_str(), extra_secret) {
            value.set_sensitive(true);
        }
        self.entries.retain(|(existing, _)| *existing != name);
        self.entries.push((name, value));
    }

    pub fn iter(&self) -> std::slice::Iter<'_, (HeaderName, HeaderValue)> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Replaces every secret value that occurs in `text` with [`REDACTED`], and a secret cut
    /// off at the end of `text` (a kept prefix of a body) as well.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut result = Cow::Borrowed(text);
        for (_, value) in &self.entries {
            if !value.is_sensitive() {
                continue;
            }
            let Ok(secret) = value.to_str() else {
                continue;
            };
            // Reported bodies are trimmed, so a value's own surrounding whitespace may be gone.
            let secret = secret.trim();
            // Also hide the credential of `Bearer X` / `Basic X` when only X is echoed.
            let credential = secret.split_once(' ').map_or(secret, |(_, c)| c.trim());
            for needle in [secret, credential] {
                // Very short values would redact ordinary words; they are not credentials.
                if needle.len() >= 4 && result.contains(needle) {
                    result = Cow::Owned(result.replace(needle, REDACTED));
                }
            }
            if let Some(cut) = cut_off_tail(&result, credential) {
                let kept = result.len() - cut;
                result = Cow::Owned(format!("{}{REDACTED}", &result[..kept]));
            }
        }
        result
    }
}

/// Length of the longest start of `secret` (4 bytes or more) that `text` ends with.
fn cut_off_tail(text: &str, secret: &str) -> Option<usize> {
    (4..secret.len())
        .rev()
        .find(|&len| secret.is_char_boundary(len) && text.ends_with(&secret[..len]))
}

impl<'a> IntoIterator for &'a RequestHeaders {
    type Item = &'a (HeaderName, HeaderValue);
    type IntoIter = std::slice::Iter<'a, (HeaderName, HeaderValue)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.entries {
            if value.is_sensitive() {
                map.entry(&name.as_str(), &REDACTED);
            } else {
                map.entry(&name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)], extra: &[String]) -> RequestHeaders {
        let mut headers = RequestHeaders::default();
        for (name, value) in pairs {
            headers.insert(
                HeaderName::try_from(*name).unwrap(),
                HeaderValue::try_from(*value).unwrap(),
                extra,
            );
        }
        headers
    }

    #[test]
    fn secret_names() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "x-api-key",
            "api-key",
            "x-auth-token",
            "client-secret",
            "db-password",
            "x-goog-api-key",
        ] {
            assert!(is_secret_header(name, &[]), "{name}");
        }
        for name in ["host", "seldon-model", "content-type", "x-request-id"] {
            assert!(!is_secret_header(name, &[]), "{name}");
        }
        assert!(is_secret_header("x-tenant", &["X-Tenant".into()]));
    }

    #[test]
    fn debug_hides_secret_values() {
        let headers = headers(
            &[
                ("authorization", "Bearer sk-live-123456"),
                ("seldon-model", "ab-test"),
                ("x-tenant", "tenant-secret-77"),
            ],
            &["x-tenant".into()],
        );
        let text = format!("{headers:?}");
        assert!(!text.contains("sk-live-123456"), "{text}");
        assert!(!text.contains("tenant-secret-77"), "{text}");
        assert!(text.contains("ab-test"), "{text}");
        assert!(text.contains(REDACTED), "{text}");
        let (_, value) = headers.iter().next().unwrap();
        assert!(!format!("{value:?}").contains("sk-live"));
    }

    #[test]
    fn scrub_replaces_echoed_credentials() {
        let headers = headers(
            &[
                ("authorization", "Bearer sk-live-123456"),
                ("seldon-model", "ab-test"),
            ],
            &[],
        );
        let scrubbed = headers.scrub("401: token sk-live-123456 is invalid for ab-test");
        assert_eq!(scrubbed, "401: token [redacted] is invalid for ab-test");
        let whole = headers.scrub("got Bearer sk-live-123456");
        assert_eq!(whole, "got [redacted]");
        assert!(matches!(headers.scrub("nothing here"), Cow::Borrowed(_)));
        let cut = headers.scrub("401: bad token sk-live-12");
        assert_eq!(cut, "401: bad token [redacted]");
    }

    #[test]
    fn scrub_ignores_whitespace_around_secret() {
        let mut headers = RequestHeaders::default();
        headers.insert(
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("29220 "),
            &[],
        );
        // A body that echoes the value twice, trimmed as error bodies are before the report.
        let scrubbed = headers.scrub("503: 29220 29220");
        assert_eq!(scrubbed, "503: [redacted] [redacted]");
    }

    #[test]
    fn insert_replaces_same_name() {
        let mut headers = headers(&[("x-a", "1")], &[]);
        headers.insert(
            HeaderName::from_static("x-a"),
            HeaderValue::from_static("2"),
            &[],
        );
        assert_eq!(headers.len(), 1);
        assert_eq!(headers.iter().next().unwrap().1, "2");
    }
}
