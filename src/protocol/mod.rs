//! Open Inference Protocol (KServe V2): tensors, payload encoders, the gRPC service
//! definition, and readiness probes.

pub mod encode;
pub mod grpc_api;
pub mod metadata;
pub mod payload;
pub mod preflight;
pub mod tensor;

/// Checks that `body` is a V2 REST inference request whose tensors agree with their shapes and
/// datatypes. Returns a message naming the tensor and the fix.
pub fn check_rest_request(body: &[u8]) -> Result<(), String> {
    encode::from_rest(body, None)
        .map(|_| ())
        .map_err(|e| e.to_string())
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
