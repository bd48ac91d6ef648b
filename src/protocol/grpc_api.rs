//! Messages, client and server of the V2 gRPC service `inference.GRPCInferenceService`,
//! generated at build time from proto/inference.proto.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("inference");

/// Full path of the ModelInfer method, for calls that send pre-encoded messages.
pub const MODEL_INFER_PATH: &str = "/inference.GRPCInferenceService/ModelInfer";
