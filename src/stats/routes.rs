//! Route labels from the response header that names the serving variant (Seldon's
//! `x-seldon-route: :baseline-predictor_3:`).

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

/// Label of responses that carry no route header.
pub const UNROUTED: &str = "unrouted";

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
    }
}
