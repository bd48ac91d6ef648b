//! Route labels from the response header that names the serving variant (Seldon's
//! `x-seldon-route: :baseline-predictor_3:`).

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

/// Label of responses that carry no route header.
pub const UNROUTED: &str = "unrouted";

/// Label of responses whose route arrived after [`MAX_LABELS`] distinct others.
pub const OTHER_ROUTES: &str = "other-routes";

/// Maximum distinct route labels kept apart. The labels come from the server, and each one keeps
/// histograms for the rest of the run, so a server that sends a new value on every response
/// would otherwise grow the generator's memory without bound.
pub const MAX_LABELS: usize = 64;

/// Returns the route label of a response: the colon-wrapped tokens of every value of `header`
/// (several lines, comma-joined values, or several tokens in one value), joined with `+` in the
/// order they appear. A response without a token is [`UNROUTED`]. Borrows in the common case of
/// one token.
pub fn route_label<'a>(headers: &'a HeaderMap, header: &HeaderName) -> Cow<'a, str> {
    let mut tokens = headers
        .get_all(header)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split([',', ':']))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    let Some(first) = tokens.next() else {
        return Cow::Borrowed(UNROUTED);
    };
    match tokens.next() {
        None => Cow::Borrowed(first),
        Some(second) => {
            let mut label = format!("{first}+{second}");
            for token in tokens {
                label.push('+');
                label.push_str(token);
            }
            Cow::Owned(label)
        }
    }
}

/// Returns the model of a route label: each `+`-joined token without its `_<version>` suffix
/// (`baseline-predictor_3` -> `baseline-predictor`). Tokens without a numeric suffix, such as
/// pipelines (`name.pipeline`) and [`UNROUTED`], stay as they are.
pub fn model_of(label: &str) -> Cow<'_, str> {
    fn strip(token: &str) -> &str {
        match token.rsplit_once('_') {
            Some((model, version))
                if !model.is_empty()
                    && !version.is_empty()
                    && version.bytes().all(|b| b.is_ascii_digit()) =>
            {
                model
            }
            _ => token,
        }
    }
    if !label.contains('+') {
        return Cow::Borrowed(strip(label));
    }
    Cow::Owned(label.split('+').map(strip).collect::<Vec<_>>().join("+"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(values: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-seldon-route", v.parse().unwrap());
        }
        route_label(&headers, &HeaderName::from_static("x-seldon-route")).into_owned()
    }

    #[test]
    fn forms() {
        assert_eq!(label(&[":baseline-predictor_3:"]), "baseline-predictor_3");
        assert_eq!(label(&[":a_1::p.pipeline:"]), "a_1+p.pipeline");
        assert_eq!(label(&[":a_1:", ":b_2:"]), "a_1+b_2");
        assert_eq!(label(&[":a_1:, :b_2:"]), "a_1+b_2");
        assert_eq!(label(&[]), UNROUTED);
        assert_eq!(label(&["", " : "]), UNROUTED);
        assert_eq!(label(&[":name.pipeline:"]), "name.pipeline");
        assert_eq!(label(&[":a_1:", ":b_2:, :c_3:"]), "a_1+b_2+c_3");
    }

    #[test]
    fn configurable_header() {
        let mut headers = HeaderMap::new();
        headers.append("x-seldon-route", ":a_1:".parse().unwrap());
        headers.append("x-variant", ":b_2:".parse().unwrap());
        let label = route_label(&headers, &HeaderName::from_static("x-variant"));
        assert_eq!(label, "b_2");
    }

    #[test]
    fn non_utf8_value_ignored() {
        let mut headers = HeaderMap::new();
        headers.append(
            "x-seldon-route",
            http::HeaderValue::from_bytes(b":\xff\xfe:").unwrap(),
        );
        let label = route_label(&headers, &HeaderName::from_static("x-seldon-route"));
        assert_eq!(label, UNROUTED);
        headers.append("x-seldon-route", ":a_1:".parse().unwrap());
        let label = route_label(&headers, &HeaderName::from_static("x-seldon-route"));
        assert_eq!(label, "a_1");
    }

    #[test]
    fn models_of_labels() {
        assert_eq!(model_of("baseline-predictor_3"), "baseline-predictor");
        assert_eq!(model_of("my_model_12"), "my_model");
        assert_eq!(model_of("name.pipeline"), "name.pipeline");
        assert_eq!(model_of("model_v2"), "model_v2");
        assert_eq!(model_of("_1"), "_1");
        assert_eq!(model_of("a_"), "a_");
        assert_eq!(model_of(UNROUTED), UNROUTED);
        assert_eq!(model_of("a_1+p.pipeline"), "a+p.pipeline");
    }
}
