//! The `[payload]` table: which source, which encoding, generation and validation options.

use std::path::Path;
use std::sync::Arc;

use http::HeaderValue;

use super::plan::{TargetPlan, Transport};
use super::{Scenario, ScenarioError};
use crate::protocol::payload::{
    read_dataset, read_request_file, Dataset, Encoding, GenerateOptions, ModelRef, PayloadPlan,
    Pending, ResponseCheck,
};

/// Reads the payload source and encodes it for the target's transport, or leaves it pending
/// when it needs the model metadata.
pub fn build(
    scenario: &Scenario,
    target: &TargetPlan,
    base_dir: &Path,
    invalid: &dyn Fn(&str, String) -> ScenarioError,
) -> Result<PayloadPlan, ScenarioError> {
    let section = &scenario.payload;
    let grpc = target.transport == Transport::Grpc;
    let encoding = match (section.encoding.as_deref(), grpc) {
        (None, false) | (Some("json"), false) => Encoding::Json,
        (Some("binary"), false) => Encoding::Binary,
        (None, true) | (Some("typed"), true) => Encoding::Typed,
        (Some("raw"), true) => Encoding::Raw,
        (Some(other), _) if !["json", "binary", "typed", "raw"].contains(&other) => {
            return Err(invalid(
                "payload.encoding",
                format!(
                    "= {other:?} is not a payload encoding; use json or binary for REST, typed \
                     or raw for gRPC"
                ),
            ));
        }
        (Some(other), _) => {
            let choices = if grpc {
                "typed or raw for gRPC"
            } else {
                "json or binary for REST"
            };
            return Err(invalid(
                "payload.encoding",
                format!("= {other:?} does not apply to this transport; use {choices}"),
            ));
        }
    };
    let sources = [
        section.file.is_some(),
        section.dataset.is_some(),
        section.generate == Some(true),
    ];
    match sources.iter().filter(|s| **s).count() {
        0 => {
            return Err(invalid(
                "payload.file",
                "is missing; set payload.file to a V2 JSON request, payload.dataset to a data \
                 set, or payload.generate = true"
                    .into(),
            ))
        }
        1 => {}
        _ => {
            return Err(invalid(
                "payload",
                "sets more than one of file, dataset and generate = true; keep one".into(),
            ))
        }
    }
    let every = section.validate_every.unwrap_or(0);
    if every == 0 && !section.expect_outputs.is_empty() {
        return Err(invalid(
            "payload.expect_outputs",
            "is set but payload.validate_every is not; set validate_every = 1 to check every \
             response, or N for every Nth"
                .into(),
        ));
    }
    let check = (every > 0).then(|| ResponseCheck {
        every,
        outputs: section.expect_outputs.clone(),
    });
    let content_type = if encoding == Encoding::Binary {
        "application/octet-stream"
    } else {
        "application/json"
    };
    let mut plan = PayloadPlan {
        source: String::new(),
        encoding,
        content_type: HeaderValue::from_static(content_type),
        requests: Arc::new([]),
        pending: None,
        check,
        max_size: grpc.then_some(target.grpc.max_send_message_size),
        model: ModelRef {
            name: target.model.clone(),
            version: target.version.clone().unwrap_or_default(),
        },
    };

    if let Some(file) = &section.file {
        let full = base_dir.join(file);
        plan.source = full.display().to_string();
        let (body, request) = read_request_file(&full)
            .map_err(|e| invalid("payload.file", format!("= {file:?}: {e}")))?;
        let encoded = if encoding == Encoding::Json {
            plan.keep_json_bodies(vec![body])
        } else {
            plan.encode(&[request])
        };
        encoded.map_err(|e| invalid("payload.file", format!("= {file:?}: {e}")))?;
    } else if let Some(file) = &section.dataset {
        let full = base_dir.join(file);
        plan.source = full.display().to_string();
        let error = |e: crate::protocol::payload::PayloadError| {
            invalid("payload.dataset", format!("= {file:?}: {e}"))
        };
        match read_dataset(&full).map_err(error)? {
            Dataset::Requests(requests) if encoding == Encoding::Json => plan
                .keep_json_bodies(requests.into_iter().map(|(body, _)| body).collect())
                .map_err(error)?,
            Dataset::Requests(requests) => {
                let tensors: Vec<_> = requests.into_iter().map(|(_, r)| r).collect();
                plan.encode(&tensors).map_err(error)?
            }
            Dataset::PerfData(entries) => {
                plan.pending = Some(Pending::PerfData {
                    entries,
                    shapes: section.shapes.clone(),
                })
            }
        }
    } else {
        plan.source = format!("generated from the metadata of model {}", target.model);
        let batch_size = section.batch_size.unwrap_or(1);
        if batch_size == 0 {
            return Err(invalid("payload.batch_size", "= 0; use 1 or more".into()));
        }
        let count = section.count.unwrap_or(16);
        if count == 0 {
            return Err(invalid("payload.count", "= 0; use 1 or more".into()));
        }
        for (name, shape) in &section.shapes {
            if let Some(dim) = shape.iter().find(|d| **d < 0) {
                return Err(invalid(
                    &format!("payload.shapes.{name}"),
                    format!("= {shape:?} has dimension {dim}; give concrete sizes"),
                ));
            }
        }
        plan.pending = Some(Pending::Generate(GenerateOptions {
            batch_size,
            seed: section.seed.unwrap_or(1),
            count,
            bytes_length: section.bytes_length.unwrap_or(16),
            shapes: section.shapes.clone(),
        }));
    }
    Ok(plan)
}
