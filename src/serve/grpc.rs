//! The embedded target's V2 gRPC service (`inference.GRPCInferenceService`), served on the
//! REST port (and on `--grpc-addr` when given) with the same simulation as REST.
//!
//! ModelInfer decodes and checks the request (typed or raw contents) and answers
//! INVALID_ARGUMENT when it is malformed. The route header and any other headers of the
//! [`Verdict`](super::Verdict) go in the initial metadata of a success, and in the trailers of
//! a trailers-only error reply, as Envoy does.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use tonic::metadata::MetadataMap;
use tonic::{Response, Status};

use super::State;
use crate::protocol::encode;
use crate::protocol::grpc_api::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use crate::protocol::grpc_api::model_infer_response::InferOutputTensor;
use crate::protocol::grpc_api::model_metadata_response::TensorMetadata;
use crate::protocol::grpc_api::*;

/// Largest gRPC request message the embedded target reads.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The gRPC service over the shared simulation state.
pub(crate) fn service(state: Arc<State>) -> GrpcInferenceServiceServer<GrpcTarget> {
    GrpcInferenceServiceServer::new(GrpcTarget { state })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// Whether a request is a gRPC call (`content-type: application/grpc...`).
pub(crate) fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

pub(crate) struct GrpcTarget {
    state: Arc<State>,
}

impl GrpcTarget {
    fn check_model(&self, name: &str) -> Result<(), Status> {
        if self.state.serves(name) {
            Ok(())
        } else {
            Err(Status::not_found(format!("model {name} not found")))
        }
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for GrpcTarget {
    async fn server_live(
        &self,
        _request: tonic::Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _request: tonic::Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        Ok(Response::new(ServerReadyResponse { ready: true }))
    }

    async fn model_ready(
        &self,
        request: tonic::Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        self.check_model(&request.get_ref().name)?;
        Ok(Response::new(ModelReadyResponse { ready: true }))
    }

    async fn server_metadata(
        &self,
        _request: tonic::Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "inferload-serve".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: Vec::new(),
        }))
    }

    async fn model_metadata(
        &self,
        request: tonic::Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let name = request.into_inner().name;
        self.check_model(&name)?;
        // The same tensors as the REST metadata endpoint.
        Ok(Response::new(ModelMetadataResponse {
            name,
            versions: vec!["1".into()],
            platform: "inferload-serve".into(),
            inputs: vec![TensorMetadata {
                name: "input_data".into(),
                datatype: "FP32".into(),
                shape: vec![-1, 10, 35],
            }],
            outputs: vec![TensorMetadata {
                name: "output".into(),
                datatype: "FP32".into(),
                shape: vec![-1, 2],
            }],
        }))
    }

    async fn model_infer(
        &self,
        request: tonic::Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let message = request.into_inner();
        self.check_model(&message.model_name)?;
        encode::from_grpc(&message)
            .map_err(|e| Status::invalid_argument(format!("invalid inference request: {e}")))?;

        let verdict = self.state.decide();
        // NOTE: `--fault` modes apply to REST only; a gRPC fault hook would act on
        // `verdict.count` here, as the REST handler does.
        // As for REST, a limited target queues the simulated service time in its slots.
        let deadline = self.state.service_deadline(verdict.delay);
        if !verdict.delay.is_zero() || self.state.slots.is_some() {
            crate::timer::precise_sleep_until(deadline).await;
        }
        let metadata = MetadataMap::from_headers(verdict.headers);
        if verdict.fail {
            return Err(Status::with_metadata(
                tonic::Code::Internal,
                "simulated failure",
                metadata,
            ));
        }
        let raw = !message.raw_input_contents.is_empty();
        let values = [0.25f32, 0.75];
        let mut output = InferOutputTensor {
            name: "output".into(),
            datatype: "FP32".into(),
            shape: vec![1, 2],
            ..Default::default()
        };
        let mut raw_output_contents = Vec::new();
        if raw {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            raw_output_contents.push(Bytes::from(bytes));
        } else {
            output.contents = Some(InferTensorContents {
                fp32_contents: values.to_vec(),
                ..Default::default()
            });
        }
        let mut response = Response::new(ModelInferResponse {
            model_name: message.model_name,
            model_version: "1".into(),
            id: message.id,
            parameters: Default::default(),
            outputs: vec![output],
            raw_output_contents,
        });
        *response.metadata_mut() = metadata;
        Ok(response)
    }
}

/// The gRPC service over a default simulation, for transport tests that need their own
/// connection handling.
#[cfg(test)]
pub(crate) fn service_for_tests() -> GrpcInferenceServiceServer<GrpcTarget> {
    use rand::SeedableRng;

    let options = super::ServeOptions::default();
    let (down, _) = tokio::sync::mpsc::unbounded_channel();
    service(Arc::new(State {
        rng: std::sync::Mutex::new(rand::rngs::SmallRng::seed_from_u64(1)),
        slots: None,
        cumulative_weights: Vec::new(),
        infer_count: std::sync::atomic::AtomicU64::new(0),
        faults: super::FaultPlan::new(&options.faults),
        metrics: super::hops::ModelMetrics::default(),
        down,
        options,
    }))
}
