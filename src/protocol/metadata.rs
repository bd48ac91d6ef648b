//! Model metadata (`GET /v2/models/{m}` or gRPC ModelMetadata): the model's input and output
//! tensors, used to generate payloads.

use serde::Deserialize;

use super::grpc_api::ModelMetadataResponse;

/// One input or output; -1 in `shape` marks a dimension of variable size.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

/// A model's declared tensors.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelMetadata {
    pub name: String,
    #[serde(default)]
    pub inputs: Vec<TensorMetadata>,
    #[serde(default)]
    pub outputs: Vec<TensorMetadata>,
}

impl ModelMetadata {
    /// Parses the REST model metadata response.
    pub fn from_json(body: &[u8]) -> Result<ModelMetadata, String> {
        serde_json::from_slice(body).map_err(|e| {
            format!(
                "the model metadata is not a V2 metadata object ({e}); expected {{\"name\", \
                 \"inputs\": [{{\"name\", \"datatype\", \"shape\"}}]}}"
            )
        })
    }

    pub fn from_grpc(response: ModelMetadataResponse) -> ModelMetadata {
        let convert =
            |t: super::grpc_api::model_metadata_response::TensorMetadata| TensorMetadata {
                name: t.name,
                datatype: t.datatype,
                shape: t.shape,
            };
        ModelMetadata {
            name: response.name,
            inputs: response.inputs.into_iter().map(convert).collect(),
            outputs: response.outputs.into_iter().map(convert).collect(),
        }
    }
}
