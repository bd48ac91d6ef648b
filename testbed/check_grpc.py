"""Smoke-check the testbed's gRPC path: NGINX (h2c) -> Envoy -> MLServer.

Uses the V2 gRPC stubs that MLServer ships (mlserver.grpc.dataplane_pb2), so
it runs with the testbed venv's Python. It sends ModelInfer to the experiment
under the name "financial-ab-test-experiment", alternating typed
fp32_contents and raw_input_contents, reads x-seldon-route from the initial
metadata and checks the 70/30 split. It also checks ModelReady and
ModelMetadata (whose model_name Envoy rewrites), the NGINX timing headers,
and the route header of an error reply, which a trailers-only reply carries
in its trailers. Exits 1 when any check fails.

Usage: check_grpc.py [--calls N] [--payload FILE]
Port: INFERLOAD_TB_NGINX_GRPC_PORT (default 18081).
"""

import argparse
import struct
from pathlib import Path

import grpc
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc as pb_grpc

from checks_common import (
    DEFAULT_PAYLOAD,
    EXPERIMENT,
    EXPERIMENT_HEADER,
    MODELS,
    Checker,
    is_seconds,
    is_whole_milliseconds,
    load_payload_values,
    model_from_route,
    port_from_env,
    route_label,
)

TIMEOUT_SECONDS = 10


def metadata_value(metadata, name: str):
    """Return the first value of a gRPC metadata key, or None."""
    for key, value in metadata or ():
        if key == name:
            return value
    return None


def build_infer_request(model_name: str, shape: list, values: list, raw: bool) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model_name)
    tensor = request.inputs.add(name="input_data", datatype="FP32", shape=shape)
    if raw:
        request.raw_input_contents.append(struct.pack(f"<{len(values)}f", *values))
    else:
        tensor.contents.fp32_contents.extend(values)
    return request


def decode_probabilities(response: pb.ModelInferResponse) -> list:
    """Return the probabilities output as floats, from typed or raw contents."""
    for index, output in enumerate(response.outputs):
        if output.name != "probabilities":
            continue
        if response.raw_output_contents:
            raw = response.raw_output_contents[index]
            return list(struct.unpack(f"<{len(raw) // 4}f", raw))
        return list(output.contents.fp32_contents)
    return []


def check_reply(checker: Checker, response, call, model: str, description: str) -> None:
    initial = call.initial_metadata()
    checker.check(response.model_name == model, f"{description}: reply names {model}", response.model_name)
    probabilities = decode_probabilities(response)
    checker.check(
        len(probabilities) == 2 and abs(sum(probabilities) - 1.0) < 1e-4,
        f"{description}: two class probabilities that sum to 1",
        repr(probabilities),
    )
    route = metadata_value(initial, "x-seldon-route")
    checker.check(route == route_label(model), f"{description}: x-seldon-route is {route_label(model)}", repr(route))
    service_time = metadata_value(initial, "x-envoy-upstream-service-time")
    checker.check(
        is_whole_milliseconds(service_time),
        f"{description}: x-envoy-upstream-service-time is whole milliseconds",
        repr(service_time),
    )
    for name in ("x-nginx-upstream-header-time", "x-nginx-request-time"):
        value = metadata_value(initial, name)
        checker.check(is_seconds(value), f"{description}: {name} is seconds", repr(value))


def run(args) -> int:
    checker = Checker("grpc")
    shape, values = load_payload_values(Path(args.payload))
    port = port_from_env("INFERLOAD_TB_NGINX_GRPC_PORT", 18081)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    experiment_metadata = (("seldon-model", EXPERIMENT_HEADER),)

    response = stub.ServerReady(pb.ServerReadyRequest(), metadata=experiment_metadata, timeout=TIMEOUT_SECONDS)
    checker.check(response.ready, "ServerReady through the chain")
    response = stub.ModelReady(
        pb.ModelReadyRequest(name=EXPERIMENT), metadata=experiment_metadata, timeout=TIMEOUT_SECONDS
    )
    checker.check(response.ready, f"ModelReady for {EXPERIMENT} (name rewritten by Envoy)")
    response, call = stub.ModelMetadata.with_call(
        pb.ModelMetadataRequest(name=EXPERIMENT), metadata=experiment_metadata, timeout=TIMEOUT_SECONDS
    )
    served = model_from_route(metadata_value(call.initial_metadata(), "x-seldon-route") or "")
    checker.check(
        served is not None and response.name == served and list(response.inputs[0].shape) == [-1, 10, 35],
        f"ModelMetadata for {EXPERIMENT} comes from the routed model and declares [-1, 10, 35]",
        f"route model {served!r}, metadata name {response.name!r}",
    )

    for model in MODELS:
        for raw in (False, True):
            contents = "raw_input_contents" if raw else "fp32_contents"
            response, call = stub.ModelInfer.with_call(
                build_infer_request(model, shape, values, raw), metadata=(("seldon-model", model),), timeout=TIMEOUT_SECONDS
            )
            check_reply(checker, response, call, model, f"{model}: ModelInfer with {contents}")

    counts = {}
    errors = []
    mismatches = []
    requests = [build_infer_request(EXPERIMENT, shape, values, raw) for raw in (False, True)]
    for index in range(args.calls):
        try:
            response, call = stub.ModelInfer.with_call(
                requests[index % 2], metadata=experiment_metadata, timeout=TIMEOUT_SECONDS
            )
        except grpc.RpcError as error:
            errors.append(f"{error.code().name}: {error.details()}")
            continue
        route = metadata_value(call.initial_metadata(), "x-seldon-route")
        model = model_from_route(route or "")
        counts[model] = counts.get(model, 0) + 1
        if index == 0:
            print(f"      first experiment call: x-seldon-route {route!r}, reply model_name {response.model_name!r}")
        if model is None or response.model_name != model or len(decode_probabilities(response)) != 2:
            mismatches.append(f"route {route!r}, reply model {response.model_name!r}")
    checker.check(not errors, f"experiment: {args.calls} ModelInfer calls succeed", "; ".join(errors[:3]))
    checker.check(not mismatches, "experiment: each reply comes from the model its route header names", "; ".join(mismatches[:3]))
    print(f"      experiment routes: {counts}")
    checker.check_split(counts, args.calls)

    # Envoy's Lua filter must find model_name anywhere in the message and
    # handle lengths that need a two-byte varint. Build such a message by
    # hand: the other fields first, then a 300-byte model_name.
    long_name = "x" * 300
    other_fields = build_infer_request("", shape, values, raw=False)
    other_fields.id = "reordered-fields"
    message = other_fields.SerializeToString() + bytes([0x0A, (300 % 128) | 0x80, 300 // 128]) + long_name.encode()
    raw_infer = channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=None,
        response_deserializer=pb.ModelInferResponse.FromString,
    )
    response = raw_infer(message, metadata=(("seldon-model", MODELS[1]),), timeout=TIMEOUT_SECONDS)
    checker.check(
        response.model_name == MODELS[1] and response.id == "reordered-fields",
        "ModelInfer with a 300-byte model_name after the other fields is rewritten",
        f"reply model {response.model_name!r}, id {response.id!r}",
    )

    # A request without seldon-model matches no Envoy route.
    try:
        stub.ServerReady(pb.ServerReadyRequest(), timeout=TIMEOUT_SECONDS)
        checker.check(False, "no seldon-model metadata: UNIMPLEMENTED", "the call succeeded")
    except grpc.RpcError as error:
        checker.check(error.code() == grpc.StatusCode.UNIMPLEMENTED, "no seldon-model metadata: UNIMPLEMENTED", error.code().name)

    # MLServer rejects a wrong shape; the reply is trailers-only, so Envoy's
    # route header arrives in the trailers.
    wrong_shape = build_infer_request(MODELS[0], [1, 350], values, raw=False)
    try:
        stub.ModelInfer(wrong_shape, metadata=(("seldon-model", MODELS[0]),), timeout=TIMEOUT_SECONDS)
        checker.check(False, "wrong input shape: error status", "the call succeeded")
    except grpc.RpcError as error:
        route = metadata_value(error.initial_metadata(), "x-seldon-route") or metadata_value(
            error.trailing_metadata(), "x-seldon-route"
        )
        checker.check(error.code() != grpc.StatusCode.OK, f"wrong input shape: error status {error.code().name}")
        checker.check(
            route == route_label(MODELS[0]),
            "wrong input shape: x-seldon-route in the initial metadata or trailers",
            repr(route),
        )

    channel.close()
    return checker.finish()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="experiment ModelInfer calls for the split check (default 100)")
    parser.add_argument("--payload", default=str(DEFAULT_PAYLOAD), help="V2 REST request file whose first input is sent")
    args = parser.parse_args()
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
