//! Protocol-neutral tensors: the V2 datatypes, tensor values and an inference request, with
//! the checks every payload passes before a run (element count against shape, values against
//! datatype, unique names).

use bytes::Bytes;
use serde_json::Value;

/// A V2 tensor datatype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Datatype {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,
    Bf16,
}

impl Datatype {
    pub const ALL: [Datatype; 14] = [
        Datatype::Bool,
        Datatype::Uint8,
        Datatype::Uint16,
        Datatype::Uint32,
        Datatype::Uint64,
        Datatype::Int8,
        Datatype::Int16,
        Datatype::Int32,
        Datatype::Int64,
        Datatype::Fp16,
        Datatype::Fp32,
        Datatype::Fp64,
        Datatype::Bytes,
        Datatype::Bf16,
    ];

    /// The name used on the wire, e.g. `FP32`.
    pub fn name(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::Uint8 => "UINT8",
            Datatype::Uint16 => "UINT16",
            Datatype::Uint32 => "UINT32",
            Datatype::Uint64 => "UINT64",
            Datatype::Int8 => "INT8",
            Datatype::Int16 => "INT16",
            Datatype::Int32 => "INT32",
            Datatype::Int64 => "INT64",
            Datatype::Fp16 => "FP16",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
            Datatype::Bytes => "BYTES",
            Datatype::Bf16 => "BF16",
        }
    }

    pub fn parse(text: &str) -> Option<Datatype> {
        Datatype::ALL.into_iter().find(|d| d.name() == text)
    }

    /// Bytes per element in raw and binary encodings; `None` for BYTES, whose elements vary.
    pub fn element_size(self) -> Option<usize> {
        match self {
            Datatype::Bool | Datatype::Uint8 | Datatype::Int8 => Some(1),
            Datatype::Uint16 | Datatype::Int16 | Datatype::Fp16 | Datatype::Bf16 => Some(2),
            Datatype::Uint32 | Datatype::Int32 | Datatype::Fp32 => Some(4),
            Datatype::Uint64 | Datatype::Int64 | Datatype::Fp64 => Some(8),
            Datatype::Bytes => None,
        }
    }

    /// Whether V2 JSON (REST `data`, gRPC typed contents) can carry this datatype. FP16 and
    /// BF16 travel only in binary or raw encodings.
    pub fn has_typed_encoding(self) -> bool {
        !matches!(self, Datatype::Fp16 | Datatype::Bf16)
    }

    /// Inclusive range of an integer datatype.
    fn int_range(self) -> Option<(i128, i128)> {
        match self {
            Datatype::Uint8 => Some((0, u8::MAX as i128)),
            Datatype::Uint16 => Some((0, u16::MAX as i128)),
            Datatype::Uint32 => Some((0, u32::MAX as i128)),
            Datatype::Uint64 => Some((0, u64::MAX as i128)),
            Datatype::Int8 => Some((i8::MIN as i128, i8::MAX as i128)),
            Datatype::Int16 => Some((i16::MIN as i128, i16::MAX as i128)),
            Datatype::Int32 => Some((i32::MIN as i128, i32::MAX as i128)),
            Datatype::Int64 => Some((i64::MIN as i128, i64::MAX as i128)),
            _ => None,
        }
    }

    fn names() -> String {
        Datatype::ALL.map(Datatype::name).join(", ")
    }
}

impl std::fmt::Display for Datatype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Tensor elements in row-major order, in the widest Rust type of their datatype's family.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    /// INT8 to INT64.
    Int(Vec<i64>),
    /// UINT8 to UINT64.
    Uint(Vec<u64>),
    /// FP16, BF16, FP32 and FP64.
    Float(Vec<f64>),
    Bytes(Vec<Bytes>),
}

impl TensorData {
    pub fn len(&self) -> usize {
        match self {
            TensorData::Bool(v) => v.len(),
            TensorData::Int(v) => v.len(),
            TensorData::Uint(v) => v.len(),
            TensorData::Float(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty container of the family that holds `datatype`.
    fn empty_for(datatype: Datatype) -> TensorData {
        match datatype {
            Datatype::Bool => TensorData::Bool(Vec::new()),
            Datatype::Int8 | Datatype::Int16 | Datatype::Int32 | Datatype::Int64 => {
                TensorData::Int(Vec::new())
            }
            Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 | Datatype::Uint64 => {
                TensorData::Uint(Vec::new())
            }
            Datatype::Fp16 | Datatype::Fp32 | Datatype::Fp64 | Datatype::Bf16 => {
                TensorData::Float(Vec::new())
            }
            Datatype::Bytes => TensorData::Bytes(Vec::new()),
        }
    }
}

/// One named input or output tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: Datatype,
    pub shape: Vec<i64>,
    pub data: TensorData,
}

/// An inference request: input tensors in order, and the outputs requested by name (empty
/// requests every output).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InferRequest {
    pub inputs: Vec<Tensor>,
    pub outputs: Vec<String>,
}

/// Why a payload cannot be sent. Every message names the tensor and the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    #[error("is not a V2 inference request: {0}; expected {{\"inputs\": [{{\"name\", \"shape\", \"datatype\", \"data\"}}]}}")]
    Malformed(String),
    #[error("has no input tensors; add at least one input tensor to `inputs`")]
    NoInputs,
    #[error("names input `{0}` twice; input names must be unique")]
    DuplicateName(String),
    #[error(
        "input `{name}` has datatype {datatype:?}, which V2 does not define; use one of {}",
        Datatype::names()
    )]
    UnknownDatatype { name: String, datatype: String },
    #[error("input `{name}` has shape {shape:?} with dimension {dim}; a request needs concrete sizes (0 or more)")]
    NegativeDimension {
        name: String,
        shape: Vec<i64>,
        dim: i64,
    },
    #[error("input `{name}` has {count} elements but shape {shape:?} needs {expected}; fix the shape or the data")]
    CountMismatch {
        name: String,
        shape: Vec<i64>,
        count: usize,
        expected: u128,
    },
    #[error("input `{name}` ({datatype}) contains {value}, which is not a valid {datatype} value; fix the value or the datatype")]
    BadValue {
        name: String,
        datatype: Datatype,
        value: String,
    },
    #[error("input `{name}` is {datatype}, which has no JSON or typed gRPC encoding; use payload.encoding = \"binary\" (REST) or \"raw\" (gRPC)")]
    NeedsBinary { name: String, datatype: Datatype },
    #[error("input `{name}`: {message}")]
    BadRaw { name: String, message: String },
}

impl Tensor {
    /// Number of elements the shape declares, saturating at `u128::MAX` for shapes too large to
    /// count.
    pub fn expected_count(shape: &[i64]) -> u128 {
        shape
            .iter()
            .try_fold(1u128, |count, d| count.checked_mul((*d).max(0) as u128))
            .unwrap_or(u128::MAX)
    }

    /// Checks the shape against the element count and the data family against the datatype.
    pub fn check(&self) -> Result<(), TensorError> {
        if let Some(dim) = self.shape.iter().find(|d| **d < 0) {
            return Err(TensorError::NegativeDimension {
                name: self.name.clone(),
                shape: self.shape.clone(),
                dim: *dim,
            });
        }
        let expected = Tensor::expected_count(&self.shape);
        if self.data.len() as u128 != expected {
            return Err(TensorError::CountMismatch {
                name: self.name.clone(),
                shape: self.shape.clone(),
                count: self.data.len(),
                expected,
            });
        }
        let family_matches = std::mem::discriminant(&self.data)
            == std::mem::discriminant(&TensorData::empty_for(self.datatype));
        if !family_matches {
            return Err(TensorError::BadValue {
                name: self.name.clone(),
                datatype: self.datatype,
                value: "values of another datatype".into(),
            });
        }
        if let (Some((low, high)), Some(bad)) = (self.datatype.int_range(), self.out_of_range()) {
            return Err(TensorError::BadValue {
                name: self.name.clone(),
                datatype: self.datatype,
                value: format!("{bad} (outside {low}..={high})"),
            });
        }
        if let Some(bad) = self.float_overflow() {
            return Err(TensorError::BadValue {
                name: self.name.clone(),
                datatype: self.datatype,
                value: format!("{bad} (beyond the largest finite {})", self.datatype),
            });
        }
        Ok(())
    }

    /// Finds the first finite value that becomes infinite in this tensor's float datatype.
    fn float_overflow(&self) -> Option<f64> {
        let TensorData::Float(values) = &self.data else {
            return None;
        };
        let overflows = |v: f64| match self.datatype {
            Datatype::Fp16 => half::f16::from_f64(v).is_infinite(),
            Datatype::Bf16 => half::bf16::from_f64(v).is_infinite(),
            Datatype::Fp32 => (v as f32).is_infinite(),
            _ => false,
        };
        values
            .iter()
            .copied()
            .find(|v| v.is_finite() && overflows(*v))
    }

    fn out_of_range(&self) -> Option<i128> {
        let (low, high) = self.datatype.int_range()?;
        match &self.data {
            TensorData::Int(v) => v.iter().map(|x| *x as i128).find(|x| *x < low || *x > high),
            TensorData::Uint(v) => v.iter().map(|x| *x as i128).find(|x| *x < low || *x > high),
            _ => None,
        }
    }
}

impl InferRequest {
    /// Checks every tensor and that input names are unique.
    pub fn check(&self) -> Result<(), TensorError> {
        if self.inputs.is_empty() {
            return Err(TensorError::NoInputs);
        }
        let mut names = std::collections::HashSet::new();
        for (index, input) in self.inputs.iter().enumerate() {
            if input.name.is_empty() {
                return Err(TensorError::Malformed(format!(
                    "input #{} has an empty `name`; give every input the name the model expects",
                    index + 1
                )));
            }
            if !names.insert(input.name.as_str()) {
                return Err(TensorError::DuplicateName(input.name.clone()));
            }
            input.check()?;
        }
        Ok(())
    }

    /// Parses and checks a V2 REST JSON inference request.
    pub fn from_json(value: &Value) -> Result<InferRequest, TensorError> {
        let object = value.as_object().ok_or_else(|| {
            TensorError::Malformed(
                "expected a JSON object {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}"
                    .into(),
            )
        })?;
        let inputs = object
            .get("inputs")
            .and_then(Value::as_array)
            .ok_or_else(|| TensorError::Malformed("`inputs` is missing or not a list".into()))?;
        let mut request = InferRequest::default();
        for (index, input) in inputs.iter().enumerate() {
            request.inputs.push(tensor_from_json(index, input)?);
        }
        if let Some(outputs) = object.get("outputs").and_then(Value::as_array) {
            for output in outputs {
                let name = output.get("name").and_then(Value::as_str).ok_or_else(|| {
                    TensorError::Malformed("an entry of `outputs` has no `name`".into())
                })?;
                request.outputs.push(name.to_string());
            }
        }
        request.check()?;
        Ok(request)
    }
}

fn tensor_from_json(index: usize, input: &Value) -> Result<Tensor, TensorError> {
    let field = |key: &str| {
        input
            .get(key)
            .ok_or_else(|| TensorError::Malformed(format!("input #{} has no `{key}`", index + 1)))
    };
    let name = field("name")?
        .as_str()
        .ok_or_else(|| {
            TensorError::Malformed(format!("input #{} `name` is not a string", index + 1))
        })?
        .to_string();
    let datatype_text = field("datatype")?.as_str().unwrap_or_default();
    let datatype = Datatype::parse(datatype_text).ok_or_else(|| TensorError::UnknownDatatype {
        name: name.clone(),
        datatype: datatype_text.to_string(),
    })?;
    let shape = field("shape")?
        .as_array()
        .and_then(|dims| dims.iter().map(Value::as_i64).collect::<Option<Vec<i64>>>())
        .ok_or_else(|| {
            TensorError::Malformed(format!("input `{name}` `shape` is not a list of integers"))
        })?;
    let data = values_from_json(&name, datatype, field("data")?)?;
    Ok(Tensor {
        name,
        datatype,
        shape,
        data,
    })
}

/// Flattens nested JSON arrays of values into tensor data of `datatype`. FP16 and BF16 values
/// are accepted as JSON numbers here; the encoder rejects them where the wire has no field.
pub fn values_from_json(
    name: &str,
    datatype: Datatype,
    value: &Value,
) -> Result<TensorData, TensorError> {
    let mut data = TensorData::empty_for(datatype);
    push_values(name, datatype, value, &mut data)?;
    Ok(data)
}

fn push_values(
    name: &str,
    datatype: Datatype,
    value: &Value,
    data: &mut TensorData,
) -> Result<(), TensorError> {
    if let Value::Array(items) = value {
        for item in items {
            push_values(name, datatype, item, data)?;
        }
        return Ok(());
    }
    let bad = || TensorError::BadValue {
        name: name.to_string(),
        datatype,
        value: value.to_string(),
    };
    match data {
        TensorData::Bool(v) => v.push(value.as_bool().ok_or_else(bad)?),
        TensorData::Int(v) => v.push(value.as_i64().ok_or_else(bad)?),
        TensorData::Uint(v) => v.push(value.as_u64().ok_or_else(bad)?),
        TensorData::Float(v) => v.push(value.as_f64().ok_or_else(bad)?),
        TensorData::Bytes(v) => {
            let text = value.as_str().ok_or_else(bad)?;
            v.push(Bytes::copy_from_slice(text.as_bytes()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<InferRequest, TensorError> {
        InferRequest::from_json(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn parses_nested_data() {
        let request = parse(
            r#"{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3.5,4]]}]}"#,
        )
        .unwrap();
        assert_eq!(
            request.inputs[0].data,
            TensorData::Float(vec![1.0, 2.0, 3.5, 4.0])
        );
        assert_eq!(request.inputs[0].shape, vec![2, 2]);
    }

    #[test]
    fn expected_count_saturates() {
        let huge = 1i64 << 62;
        assert_eq!(Tensor::expected_count(&[huge, huge, huge]), u128::MAX);
        assert_eq!(Tensor::expected_count(&[huge, 4]), 1u128 << 64);
        assert_eq!(Tensor::expected_count(&[]), 1);
    }

    #[test]
    fn rejects_float_beyond_datatype() {
        for (datatype, value) in [("FP16", "65520"), ("BF16", "3.4e38"), ("FP32", "3.5e38")] {
            let text = format!(
                r#"{{"inputs":[{{"name":"x","shape":[1],"datatype":"{datatype}","data":[{value}]}}]}}"#
            );
            let message = parse(&text).unwrap_err().to_string();
            assert!(message.contains("largest finite"), "{datatype}: {message}");
        }
        // The largest finite values themselves are accepted.
        for (datatype, value) in [("FP16", "65504"), ("FP32", "3.4e38")] {
            let text = format!(
                r#"{{"inputs":[{{"name":"x","shape":[1],"datatype":"{datatype}","data":[{value}]}}]}}"#
            );
            assert!(parse(&text).is_ok(), "{datatype} {value}");
        }
    }

    #[test]
    fn rejects_count_mismatch() {
        let data: Vec<String> = (0..35).map(|i| i.to_string()).collect();
        let text = format!(
            r#"{{"inputs":[{{"name":"input_data","shape":[2,35],"datatype":"FP32","data":[{}]}}]}}"#,
            data.join(",")
        );
        let message = parse(&text).unwrap_err().to_string();
        assert!(message.contains("`input_data`"), "{message}");
        assert!(message.contains("[2, 35]"), "{message}");
        assert!(message.contains("35 elements"), "{message}");
        assert!(message.contains("needs 70"), "{message}");
    }

    #[test]
    fn rejects_value_of_wrong_datatype() {
        let error =
            parse(r#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":["a"]}]}"#)
                .unwrap_err();
        assert!(error.to_string().contains("not a valid INT32"), "{error}");
    }

    #[test]
    fn rejects_out_of_range_integer() {
        let error =
            parse(r#"{"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[256]}]}"#)
                .unwrap_err();
        assert!(error.to_string().contains("256"), "{error}");
    }

    #[test]
    fn rejects_duplicate_names() {
        let error = parse(
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1]},
                          {"name":"x","shape":[1],"datatype":"INT32","data":[1]}]}"#,
        )
        .unwrap_err();
        assert_eq!(error, TensorError::DuplicateName("x".into()));
    }

    #[test]
    fn rejects_unknown_datatype() {
        let error = parse(r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]}"#)
            .unwrap_err();
        assert!(error.to_string().contains("FP32"), "{error}");
    }

    #[test]
    fn datatype_names_round_trip() {
        for datatype in Datatype::ALL {
            assert_eq!(Datatype::parse(datatype.name()), Some(datatype));
        }
    }
}
