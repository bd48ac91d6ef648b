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

use super::faults::GrpcFault;
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
        self.state.apply_process_faults(verdict.count);
        let fault = self.state.faults.for_grpc_request(verdict.count);
        let mut delay = verdict.delay;
        if let Some(GrpcFault::Stall(extra)) = fault {
            delay += extra;
        }
        // As for REST, a limited target queues the simulated service time in its slots.
        let deadline = self.state.service_deadline(delay);
        if !delay.is_zero() || self.state.slots.is_some() {
            crate::timer::precise_sleep_until(deadline).await;
        }
        let metadata = MetadataMap::from_headers(verdict.headers);
        if let Some(GrpcFault::Status(code)) = fault {
            // tonic sends an error returned here as a trailers-only reply, so the route
            // header travels in the trailers, as with Envoy.
            return Err(Status::with_metadata(code, "simulated fault", metadata));
        }
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
    service_with_options(super::ServeOptions::default())
}

/// Builds the gRPC service over a simulation with `options`, giving each route weight 1.
#[cfg(test)]
fn service_with_options(options: super::ServeOptions) -> GrpcInferenceServiceServer<GrpcTarget> {
    use rand::SeedableRng;

    let (down, _) = tokio::sync::broadcast::channel(1);
    let mut total = 0.0;
    let cumulative_weights = options
        .routes
        .iter()
        .flat_map(|routes| &routes.0)
        .map(|(label, _)| {
            total += 1.0;
            (label.clone(), total)
        })
        .collect();
    service(Arc::new(State {
        rng: std::sync::Mutex::new(rand::rngs::SmallRng::seed_from_u64(1)),
        slots: None,
        cumulative_weights,
        infer_count: std::sync::atomic::AtomicU64::new(0),
        faults: super::FaultPlan::new(&options.faults),
        metrics: super::hops::ModelMetrics::default(),
        down,
        options,
    }))
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use prost::Message;

    use super::*;

    /// Sends one ModelInfer call of `[1, 2]` FP32 to `service` and returns the HTTP response.
    async fn infer(
        service: &mut GrpcInferenceServiceServer<GrpcTarget>,
    ) -> http::Response<tonic::body::Body> {
        let message = ModelInferRequest {
            model_name: "m".into(),
            inputs: vec![model_infer_request::InferInputTensor {
                name: "x".into(),
                datatype: "FP32".into(),
                shape: vec![1, 2],
                contents: Some(InferTensorContents {
                    fp32_contents: vec![1.0, 2.0],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let encoded = message.encode_to_vec();
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        frame.extend_from_slice(&encoded);
        let request = http::Request::post(format!(
            "http://localhost{}",
            crate::protocol::grpc_api::MODEL_INFER_PATH
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(http_body_util::Full::new(
            Bytes::from(frame),
        )))
        .unwrap();
        tower_service::Service::call(service, request)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn fault_reply_is_trailers_only_with_route() {
        let options = super::super::ServeOptions {
            routes: Some("a_1=1".parse().unwrap()),
            faults: vec!["grpc-error:every=2,code=resource-exhausted"
                .parse()
                .unwrap()],
            ..Default::default()
        };
        let mut service = service_with_options(options);

        // Call 1 succeeds: the route is in the initial metadata and a message follows.
        let response = infer(&mut service).await;
        assert_eq!(response.headers()["x-seldon-route"], ":a_1:");
        assert!(response.headers().get("grpc-status").is_none());
        let collected = response.into_body().collect().await.unwrap();
        let trailers = collected.trailers().cloned().unwrap_or_default();
        assert_eq!(trailers["grpc-status"], "0");
        assert!(!collected.to_bytes().is_empty());

        // Call 2 gets the fault: one header block that ends the stream and carries the status
        // and the route, as Envoy sends a trailers-only reply.
        let response = infer(&mut service).await;
        assert_eq!(response.headers()["grpc-status"], "8");
        assert_eq!(response.headers()["x-seldon-route"], ":a_1:");
        assert!(hyper::body::Body::is_end_stream(response.body()));
    }
}
