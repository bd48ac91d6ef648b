//! Encoders from [`InferRequest`] to each wire format, and the decoders the embedded target
//! and the tests use to read them back.
//!
//! - REST JSON: `{"inputs": [{"name", "shape", "datatype", "data"}]}` with flat data.
//! - REST binary tensor extension: a JSON header whose inputs carry
//!   `parameters.binary_data_size` and no `data`, followed by each input's raw bytes in order;
//!   the header's length goes in the `Inference-Header-Content-Length` request header.
//! - gRPC: `ModelInferRequest` with typed `contents` per input, or with
//!   `raw_input_contents` (one entry per input, in the order of `inputs`), never both.
//!
//! Raw bytes are little-endian; BOOL is one byte; each BYTES element is preceded by its length
//! in bytes (of its UTF-8 text, for strings) as a 4-byte little-endian integer.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{json, Map, Value};

use super::grpc_api::{self, model_infer_request, InferTensorContents, ModelInferRequest};
use super::tensor::{Datatype, InferRequest, Tensor, TensorData, TensorError};

/// Encodes a request as V2 REST JSON.
pub fn rest_json(request: &InferRequest) -> Result<Bytes, TensorError> {
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for tensor in &request.inputs {
        require_typed(tensor)?;
        inputs.push(json!({
            "name": tensor.name,
            "shape": tensor.shape,
            "datatype": tensor.datatype.name(),
            "data": json_values(&tensor.data),
        }));
    }
    let mut body = Map::new();
    body.insert("inputs".into(), Value::Array(inputs));
    if !request.outputs.is_empty() {
        body.insert("outputs".into(), outputs_json(&request.outputs, false));
    }
    Ok(Bytes::from(
        serde_json::to_vec(&Value::Object(body)).expect("JSON values always serialize"),
    ))
}

/// Encodes a request with the REST binary tensor extension. Returns the body and the length
/// of its JSON header.
pub fn rest_binary(request: &InferRequest) -> Result<(Bytes, usize), TensorError> {
    let mut raws = Vec::with_capacity(request.inputs.len());
    let mut inputs = Vec::with_capacity(request.inputs.len());
    for tensor in &request.inputs {
        let raw = raw_bytes(tensor);
        inputs.push(json!({
            "name": tensor.name,
            "shape": tensor.shape,
            "datatype": tensor.datatype.name(),
            "parameters": {"binary_data_size": raw.len()},
        }));
        raws.push(raw);
    }
    let mut header = Map::new();
    header.insert("inputs".into(), Value::Array(inputs));
    if !request.outputs.is_empty() {
        header.insert("outputs".into(), outputs_json(&request.outputs, true));
    }
    let header = serde_json::to_vec(&Value::Object(header)).expect("JSON values always serialize");
    let mut body =
        BytesMut::with_capacity(header.len() + raws.iter().map(Bytes::len).sum::<usize>());
    body.extend_from_slice(&header);
    for raw in &raws {
        body.extend_from_slice(raw);
    }
    Ok((body.freeze(), header.len()))
}

/// Builds a gRPC `ModelInferRequest` with typed contents, or with raw contents when `raw`.
pub fn grpc(
    request: &InferRequest,
    model: &str,
    version: &str,
    raw: bool,
) -> Result<ModelInferRequest, TensorError> {
    let mut message = ModelInferRequest {
        model_name: model.to_string(),
        model_version: version.to_string(),
        ..Default::default()
    };
    for tensor in &request.inputs {
        let contents = if raw {
            message.raw_input_contents.push(raw_bytes(tensor));
            None
        } else {
            require_typed(tensor)?;
            Some(typed_contents(tensor))
        };
        message.inputs.push(model_infer_request::InferInputTensor {
            name: tensor.name.clone(),
            datatype: tensor.datatype.name().to_string(),
            shape: tensor.shape.clone(),
            parameters: Default::default(),
            contents,
        });
    }
    for name in &request.outputs {
        message
            .outputs
            .push(model_infer_request::InferRequestedOutputTensor {
                name: name.clone(),
                parameters: Default::default(),
            });
    }
    Ok(message)
}

fn require_typed(tensor: &Tensor) -> Result<(), TensorError> {
    if tensor.datatype.has_typed_encoding() {
        Ok(())
    } else {
        Err(TensorError::NeedsBinary {
            name: tensor.name.clone(),
            datatype: tensor.datatype,
        })
    }
}

fn outputs_json(outputs: &[String], binary: bool) -> Value {
    Value::Array(
        outputs
            .iter()
            .map(|name| {
                if binary {
                    json!({"name": name, "parameters": {"binary_data": false}})
                } else {
                    json!({ "name": name })
                }
            })
            .collect(),
    )
}

fn json_values(data: &TensorData) -> Value {
    match data {
        TensorData::Bool(v) => json!(v),
        TensorData::Int(v) => json!(v),
        TensorData::Uint(v) => json!(v),
        TensorData::Float(v) => json!(v),
        TensorData::Bytes(v) => Value::Array(
            v.iter()
                .map(|b| Value::String(String::from_utf8_lossy(b).into_owned()))
                .collect(),
        ),
    }
}

fn typed_contents(tensor: &Tensor) -> InferTensorContents {
    let mut contents = InferTensorContents::default();
    match (&tensor.data, tensor.datatype) {
        (TensorData::Bool(v), _) => contents.bool_contents = v.clone(),
        (TensorData::Int(v), Datatype::Int64) => contents.int64_contents = v.clone(),
        (TensorData::Int(v), _) => contents.int_contents = v.iter().map(|x| *x as i32).collect(),
        (TensorData::Uint(v), Datatype::Uint64) => contents.uint64_contents = v.clone(),
        (TensorData::Uint(v), _) => contents.uint_contents = v.iter().map(|x| *x as u32).collect(),
        (TensorData::Float(v), Datatype::Fp64) => contents.fp64_contents = v.clone(),
        (TensorData::Float(v), _) => contents.fp32_contents = v.iter().map(|x| *x as f32).collect(),
        (TensorData::Bytes(v), _) => contents.bytes_contents = v.clone(),
    }
    contents
}

/// Little-endian raw bytes of a checked tensor.
pub fn raw_bytes(tensor: &Tensor) -> Bytes {
    let size = tensor.datatype.element_size().unwrap_or(0);
    let mut out = BytesMut::with_capacity(size * tensor.data.len());
    match &tensor.data {
        TensorData::Bool(v) => v.iter().for_each(|x| out.put_u8(u8::from(*x))),
        TensorData::Int(v) => v.iter().for_each(|x| match size {
            1 => out.put_i8(*x as i8),
            2 => out.put_i16_le(*x as i16),
            4 => out.put_i32_le(*x as i32),
            _ => out.put_i64_le(*x),
        }),
        TensorData::Uint(v) => v.iter().for_each(|x| match size {
            1 => out.put_u8(*x as u8),
            2 => out.put_u16_le(*x as u16),
            4 => out.put_u32_le(*x as u32),
            _ => out.put_u64_le(*x),
        }),
        TensorData::Float(v) => v.iter().for_each(|x| match tensor.datatype {
            Datatype::Fp16 => out.put_u16_le(half::f16::from_f64(*x).to_bits()),
            Datatype::Bf16 => out.put_u16_le(half::bf16::from_f64(*x).to_bits()),
            Datatype::Fp32 => out.put_f32_le(*x as f32),
            _ => out.put_f64_le(*x),
        }),
        TensorData::Bytes(v) => v.iter().for_each(|x| {
            out.put_u32_le(x.len() as u32);
            out.extend_from_slice(x);
        }),
    }
    out.freeze()
}

/// Decodes raw little-endian bytes into tensor data of `datatype` with `count` elements.
pub fn from_raw(
    name: &str,
    datatype: Datatype,
    count: usize,
    raw: &[u8],
) -> Result<TensorData, TensorError> {
    let bad = |message: String| TensorError::BadRaw {
        name: name.to_string(),
        message,
    };
    if let Some(size) = datatype.element_size() {
        if raw.len() != size * count {
            return Err(bad(format!(
                "has {} raw bytes but {count} {datatype} elements need {}",
                raw.len(),
                size * count
            )));
        }
        let chunks = raw.chunks_exact(size);
        let array = |c: &[u8]| -> [u8; 8] {
            let mut bytes = [0u8; 8];
            bytes[..c.len()].copy_from_slice(c);
            bytes
        };
        return Ok(match datatype {
            Datatype::Bool => TensorData::Bool(raw.iter().map(|b| *b != 0).collect()),
            Datatype::Int8 => TensorData::Int(raw.iter().map(|b| *b as i8 as i64).collect()),
            Datatype::Int16 => TensorData::Int(
                chunks
                    .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                    .collect(),
            ),
            Datatype::Int32 => TensorData::Int(
                chunks
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                    .collect(),
            ),
            Datatype::Int64 => {
                TensorData::Int(chunks.map(|c| i64::from_le_bytes(array(c))).collect())
            }
            Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 | Datatype::Uint64 => {
                TensorData::Uint(chunks.map(|c| u64::from_le_bytes(array(c))).collect())
            }
            Datatype::Fp16 => TensorData::Float(
                chunks
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f64())
                    .collect(),
            ),
            Datatype::Bf16 => TensorData::Float(
                chunks
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f64())
                    .collect(),
            ),
            Datatype::Fp32 => TensorData::Float(
                chunks
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                    .collect(),
            ),
            Datatype::Fp64 => {
                TensorData::Float(chunks.map(|c| f64::from_le_bytes(array(c))).collect())
            }
            Datatype::Bytes => unreachable!("BYTES has no fixed element size"),
        });
    }
    let mut elements = Vec::with_capacity(count);
    let mut rest = raw;
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(bad("ends inside a BYTES length prefix".into()));
        }
        let length = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if rest.len() - 4 < length {
            return Err(bad(format!(
                "has a BYTES element of length {length} with only {} bytes left",
                rest.len() - 4
            )));
        }
        elements.push(Bytes::copy_from_slice(&rest[4..4 + length]));
        rest = &rest[4 + length..];
    }
    Ok(TensorData::Bytes(elements))
}

/// Reads a gRPC `ModelInferRequest` back into tensors and checks them.
pub fn from_grpc(message: &ModelInferRequest) -> Result<InferRequest, TensorError> {
    let raw = !message.raw_input_contents.is_empty();
    if raw && message.raw_input_contents.len() != message.inputs.len() {
        return Err(TensorError::Malformed(format!(
            "{} raw_input_contents entries for {} inputs; send one per input",
            message.raw_input_contents.len(),
            message.inputs.len()
        )));
    }
    let mut request = InferRequest::default();
    for (index, input) in message.inputs.iter().enumerate() {
        let datatype =
            Datatype::parse(&input.datatype).ok_or_else(|| TensorError::UnknownDatatype {
                name: input.name.clone(),
                datatype: input.datatype.clone(),
            })?;
        let count = Tensor::expected_count(&input.shape) as usize;
        let data = match (&input.contents, raw) {
            (Some(_), true) => {
                return Err(TensorError::Malformed(format!(
                    "input `{}` has typed contents and the request has raw_input_contents; use one",
                    input.name
                )))
            }
            (None, true) => from_raw(
                &input.name,
                datatype,
                count,
                &message.raw_input_contents[index],
            )?,
            (Some(contents), false) => from_typed(datatype, contents),
            (None, false) => {
                return Err(TensorError::Malformed(format!(
                    "input `{}` has no contents",
                    input.name
                )))
            }
        };
        request.inputs.push(Tensor {
            name: input.name.clone(),
            datatype,
            shape: input.shape.clone(),
            data,
        });
    }
    request.outputs = message.outputs.iter().map(|o| o.name.clone()).collect();
    request.check()?;
    Ok(request)
}

fn from_typed(datatype: Datatype, contents: &InferTensorContents) -> TensorData {
    match datatype {
        Datatype::Bool => TensorData::Bool(contents.bool_contents.clone()),
        Datatype::Int8 | Datatype::Int16 | Datatype::Int32 => {
            TensorData::Int(contents.int_contents.iter().map(|x| *x as i64).collect())
        }
        Datatype::Int64 => TensorData::Int(contents.int64_contents.clone()),
        Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 => {
            TensorData::Uint(contents.uint_contents.iter().map(|x| *x as u64).collect())
        }
        Datatype::Uint64 => TensorData::Uint(contents.uint64_contents.clone()),
        Datatype::Fp32 => {
            TensorData::Float(contents.fp32_contents.iter().map(|x| *x as f64).collect())
        }
        Datatype::Fp64 => TensorData::Float(contents.fp64_contents.clone()),
        Datatype::Bytes => TensorData::Bytes(contents.bytes_contents.clone()),
        // No typed field exists, so the element count check reports the empty tensor.
        Datatype::Fp16 | Datatype::Bf16 => TensorData::Float(Vec::new()),
    }
}

/// Reads a REST request body back into tensors: JSON when `header_length` is `None`, else the
/// binary tensor extension with a JSON header of that length.
pub fn from_rest(body: &[u8], header_length: Option<usize>) -> Result<InferRequest, TensorError> {
    let Some(header_length) = header_length else {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| TensorError::Malformed(format!("invalid JSON: {e}")))?;
        return InferRequest::from_json(&value);
    };
    if header_length > body.len() {
        return Err(TensorError::Malformed(format!(
            "Inference-Header-Content-Length {header_length} is larger than the body ({} bytes)",
            body.len()
        )));
    }
    let mut header: Value = serde_json::from_slice(&body[..header_length])
        .map_err(|e| TensorError::Malformed(format!("invalid JSON header: {e}")))?;
    let mut offset = header_length;
    let inputs = header
        .get_mut("inputs")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| TensorError::Malformed("`inputs` is missing or not a list".into()))?;
    let mut binary = Vec::new();
    for input in inputs.iter_mut() {
        let size = input
            .pointer("/parameters/binary_data_size")
            .and_then(Value::as_u64);
        let Some(size) = size else {
            binary.push(None);
            continue;
        };
        let size = size as usize;
        if offset + size > body.len() {
            return Err(TensorError::Malformed(format!(
                "binary_data_size {size} runs past the end of the body"
            )));
        }
        binary.push(Some(&body[offset..offset + size]));
        offset += size;
        // A placeholder so the JSON parser accepts the tensor; replaced below.
        input["data"] = Value::Array(Vec::new());
    }
    let mut request = InferRequest::default();
    for (input, raw) in inputs.iter().zip(binary) {
        let name = input
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let datatype_text = input
            .get("datatype")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let datatype =
            Datatype::parse(datatype_text).ok_or_else(|| TensorError::UnknownDatatype {
                name: name.to_string(),
                datatype: datatype_text.to_string(),
            })?;
        let shape: Vec<i64> = input
            .get("shape")
            .and_then(Value::as_array)
            .map(|dims| dims.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let data = match raw {
            Some(raw) => from_raw(name, datatype, Tensor::expected_count(&shape) as usize, raw)?,
            None => super::tensor::values_from_json(
                name,
                datatype,
                input.get("data").unwrap_or(&Value::Null),
            )?,
        };
        request.inputs.push(Tensor {
            name: name.to_string(),
            datatype,
            shape,
            data,
        });
    }
    request.check()?;
    Ok(request)
}

/// Name, datatype and shape of each output of a gRPC response, for response validation.
pub fn grpc_outputs(response: &grpc_api::ModelInferResponse) -> Vec<(String, String, Vec<i64>)> {
    response
        .outputs
        .iter()
        .map(|o| (o.name.clone(), o.datatype.clone(), o.shape.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> InferRequest {
        InferRequest {
            inputs: vec![
                Tensor {
                    name: "x".into(),
                    datatype: Datatype::Fp32,
                    shape: vec![2, 2],
                    data: TensorData::Float(vec![1.0, -2.5, 3.0, 4.25]),
                },
                Tensor {
                    name: "ids".into(),
                    datatype: Datatype::Int8,
                    shape: vec![3],
                    data: TensorData::Int(vec![-128, 0, 127]),
                },
                Tensor {
                    name: "text".into(),
                    datatype: Datatype::Bytes,
                    shape: vec![2],
                    data: TensorData::Bytes(vec![Bytes::from("héllo"), Bytes::from("")]),
                },
                Tensor {
                    name: "flags".into(),
                    datatype: Datatype::Bool,
                    shape: vec![1, 2],
                    data: TensorData::Bool(vec![true, false]),
                },
                Tensor {
                    name: "big".into(),
                    datatype: Datatype::Uint64,
                    shape: vec![1],
                    data: TensorData::Uint(vec![u64::MAX]),
                },
            ],
            outputs: vec!["out".into()],
        }
    }

    #[test]
    fn rest_json_round_trip() {
        let body = rest_json(&sample()).unwrap();
        assert_eq!(from_rest(&body, None).unwrap().inputs, sample().inputs);
    }

    #[test]
    fn rest_binary_round_trip() {
        let (body, header) = rest_binary(&sample()).unwrap();
        assert_eq!(
            from_rest(&body, Some(header)).unwrap().inputs,
            sample().inputs
        );
    }

    #[test]
    fn bytes_length_counts_utf8_bytes() {
        let tensor = &sample().inputs[2];
        let raw = raw_bytes(tensor);
        // "héllo" is 6 bytes in UTF-8 although it has 5 characters.
        assert_eq!(&raw[..4], &6u32.to_le_bytes());
        assert_eq!(raw.len(), 4 + 6 + 4);
    }

    #[test]
    fn grpc_typed_round_trip() {
        let message = grpc(&sample(), "m", "", false).unwrap();
        assert!(message.raw_input_contents.is_empty());
        assert_eq!(from_grpc(&message).unwrap(), sample());
    }

    #[test]
    fn grpc_raw_round_trip() {
        let message = grpc(&sample(), "m", "", true).unwrap();
        assert_eq!(message.raw_input_contents.len(), 5);
        assert!(message.inputs.iter().all(|i| i.contents.is_none()));
        assert_eq!(from_grpc(&message).unwrap(), sample());
    }

    #[test]
    fn half_precision_needs_raw() {
        let request = InferRequest {
            inputs: vec![Tensor {
                name: "h".into(),
                datatype: Datatype::Fp16,
                shape: vec![2],
                data: TensorData::Float(vec![0.5, -1.0]),
            }],
            outputs: vec![],
        };
        let error = rest_json(&request).unwrap_err();
        assert!(error.to_string().contains("`h`"), "{error}");
        assert!(grpc(&request, "m", "", false).is_err());
        let message = grpc(&request, "m", "", true).unwrap();
        assert_eq!(
            &message.raw_input_contents[0][..],
            &[0x00, 0x38, 0x00, 0xbc]
        );
        assert_eq!(from_grpc(&message).unwrap(), request);
    }

    #[test]
    fn raw_length_mismatch_is_rejected() {
        let mut message = grpc(&sample(), "m", "", true).unwrap();
        message.raw_input_contents[0] = Bytes::from_static(&[0; 3]);
        let error = from_grpc(&message).unwrap_err();
        assert!(error.to_string().contains("`x`"), "{error}");
    }
}
