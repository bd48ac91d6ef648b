//! Open Inference Protocol (KServe V2) request checks and readiness probes.

pub mod preflight;

use serde::Deserialize;
use serde_json::Value;

/// Datatypes named by the V2 protocol.
pub const DATATYPES: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64", "BYTES", "BF16",
];

#[derive(Debug, Deserialize)]
struct RestRequest {
    inputs: Vec<RestInput>,
}

#[derive(Debug, Deserialize)]
struct RestInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    data: Value,
}

/// Checks that `body` is a V2 REST inference request whose tensors agree with their shapes and
/// datatypes. Returns a message naming the tensor and the fix.
pub fn check_rest_request(body: &[u8]) -> Result<(), String> {
    let request: RestRequest = serde_json::from_slice(body).map_err(|e| {
        format!("is not a V2 inference request ({e}); expected {{\"inputs\": [{{\"name\", \"shape\", \"datatype\", \"data\"}}]}}")
    })?;
    if request.inputs.is_empty() {
        return Err("has an empty `inputs` list; add at least one input tensor".into());
    }
    let mut names = std::collections::HashSet::new();
    for input in &request.inputs {
        if !names.insert(input.name.as_str()) {
            return Err(format!(
                "names input `{}` twice; input names must be unique",
                input.name
            ));
        }
        check_tensor(input)?;
    }
    Ok(())
}

fn check_tensor(input: &RestInput) -> Result<(), String> {
    let name = &input.name;
    if !DATATYPES.contains(&input.datatype.as_str()) {
        return Err(format!(
            "input `{name}` has datatype {:?}, which V2 does not define; use one of {}",
            input.datatype,
            DATATYPES.join(", ")
        ));
    }
    if matches!(input.datatype.as_str(), "FP16" | "BF16") {
        return Err(format!(
            "input `{name}` is {}, which has no JSON encoding; send it with a binary encoding",
            input.datatype
        ));
    }
    if let Some(bad) = input.shape.iter().find(|d| **d < 0) {
        return Err(format!(
            "input `{name}` has shape {:?} with dimension {bad}; a request needs concrete sizes",
            input.shape
        ));
    }
    let expected: u128 = input.shape.iter().map(|d| *d as u128).product();
    let mut count: u128 = 0;
    let mut bad_value = None;
    count_elements(&input.data, &input.datatype, &mut count, &mut bad_value);
    if let Some(value) = bad_value {
        return Err(format!(
            "input `{name}` ({}) contains {value}, which is not a valid {} value; fix the \
             value or the datatype",
            input.datatype, input.datatype
        ));
    }
    if count != expected {
        return Err(format!(
            "input `{name}` has {count} elements but shape {:?} needs {expected}; fix the shape or the data",
            input.shape
        ));
    }
    Ok(())
}

fn count_elements(value: &Value, datatype: &str, count: &mut u128, bad: &mut Option<String>) {
    match value {
        Value::Array(items) => {
            for item in items {
                count_elements(item, datatype, count, bad);
            }
        }
        scalar => {
            *count += 1;
            if bad.is_none() && !scalar_matches(scalar, datatype) {
                *bad = Some(scalar.to_string());
            }
        }
    }
}

fn scalar_matches(value: &Value, datatype: &str) -> bool {
    let signed_in = |min: i64, max: i64| value.as_i64().is_some_and(|v| (min..=max).contains(&v));
    let unsigned_up_to = |max: u64| value.as_u64().is_some_and(|v| v <= max);
    match datatype {
        "BOOL" => value.is_boolean(),
        "BYTES" => value.is_string(),
        "FP32" | "FP64" => value.is_number(),
        "UINT8" => unsigned_up_to(u8::MAX.into()),
        "UINT16" => unsigned_up_to(u16::MAX.into()),
        "UINT32" => unsigned_up_to(u32::MAX.into()),
        "UINT64" => value.is_u64(),
        "INT8" => signed_in(i8::MIN.into(), i8::MAX.into()),
        "INT16" => signed_in(i16::MIN.into(), i16::MAX.into()),
        "INT32" => signed_in(i32::MIN.into(), i32::MAX.into()),
        _ => value.is_i64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_matching_tensor() {
        let body =
            br#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3.5,4]}]}"#;
        assert_eq!(check_rest_request(body), Ok(()));
    }

    #[test]
    fn rejects_count_mismatch() {
        let body = br#"{"inputs":[{"name":"x","shape":[2,35],"datatype":"FP32","data":[1,2]}]}"#;
        let err = check_rest_request(body).unwrap_err();
        assert!(err.contains("`x`"), "{err}");
        assert!(err.contains("[2, 35]"), "{err}");
        assert!(err.contains("2 elements"), "{err}");
    }

    #[test]
    fn rejects_wrong_datatype_value() {
        let body = br#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":["a"]}]}"#;
        assert!(check_rest_request(body)
            .unwrap_err()
            .contains("not a valid INT32"));
    }

    #[test]
    fn rejects_integers_out_of_range() {
        for (datatype, value) in [("UINT8", "256"), ("INT8", "-129"), ("INT32", "2147483648")] {
            let body = format!(
                r#"{{"inputs":[{{"name":"x","shape":[1],"datatype":"{datatype}","data":[{value}]}}]}}"#
            );
            let err = check_rest_request(body.as_bytes()).unwrap_err();
            assert!(err.contains(value), "{err}");
        }
        let body = br#"{"inputs":[{"name":"x","shape":[2],"datatype":"UINT8","data":[0,255]}]}"#;
        assert_eq!(check_rest_request(body), Ok(()));
    }

    #[test]
    fn rejects_duplicate_names() {
        let body = br#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1]},
                                  {"name":"x","shape":[1],"datatype":"INT32","data":[1]}]}"#;
        assert!(check_rest_request(body).unwrap_err().contains("twice"));
    }
}
