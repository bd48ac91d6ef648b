"""Smoke-check the testbed's REST path: NGINX -> Envoy -> MLServer.

Sends V2 REST requests to NGINX on 127.0.0.1 over one keep-alive connection
and checks readiness, metadata, inference for each model, the experiment's
70/30 split, the route and timing headers, the error replies of each hop, and
MLServer's per-model inference metrics.
Exits 1 when any check fails.

Usage: check_rest.py [--requests N] [--payload FILE]
Ports: INFERLOAD_TB_NGINX_PORT (default 18080) and, for the Prometheus
metrics check, INFERLOAD_TB_MLSERVER_METRICS_PORT (default 18092).
"""

import argparse
import http.client
import json
from pathlib import Path

from checks_common import (
    DEFAULT_PAYLOAD,
    EXPERIMENT,
    EXPERIMENT_HEADER,
    MODELS,
    Checker,
    is_seconds,
    is_whole_milliseconds,
    model_from_route,
    port_from_env,
    route_label,
)

HOST_HEADER = "ml-api.local"
PREFIX = "/financial-inference"
TIMEOUT_SECONDS = 10


class Client:
    """A keep-alive HTTP/1.1 connection to NGINX's REST port."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)

    def request(self, method: str, path: str, seldon_model=None, body=None, host=HOST_HEADER):
        """Send one request; return (status, headers as a lower-case dict, body bytes)."""
        headers = {"Host": host}
        if seldon_model is not None:
            headers["seldon-model"] = seldon_model
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, data


def check_timing_headers(checker: Checker, headers: dict, description: str) -> None:
    checker.check(
        is_whole_milliseconds(headers.get("x-envoy-upstream-service-time")),
        f"{description}: x-envoy-upstream-service-time is whole milliseconds",
        repr(headers.get("x-envoy-upstream-service-time")),
    )
    for name in ("x-nginx-upstream-header-time", "x-nginx-request-time"):
        checker.check(is_seconds(headers.get(name)), f"{description}: {name} is seconds", repr(headers.get(name)))


def check_inference_reply(checker: Checker, status: int, headers: dict, body: bytes, model: str, description: str):
    if not checker.check(status == 200, f"{description}: status 200", f"got {status}: {body[:300]!r}"):
        return
    reply = json.loads(body)
    checker.check(reply.get("model_name") == model, f"{description}: reply names {model}", reply.get("model_name"))
    outputs = {output["name"]: output for output in reply.get("outputs", [])}
    probabilities = outputs.get("probabilities", {}).get("data", [])
    checker.check(
        len(probabilities) == 2 and abs(sum(probabilities) - 1.0) < 1e-4,
        f"{description}: two class probabilities that sum to 1",
        repr(probabilities),
    )


def run(args) -> int:
    checker = Checker("rest")
    client = Client(port_from_env("INFERLOAD_TB_NGINX_PORT", 18080))
    payload = Path(args.payload).read_bytes()

    status, headers, body = client.request("GET", f"{PREFIX}/v2/health/ready", seldon_model=MODELS[0])
    checker.check(status == 200, "server ready through the chain", f"got {status}")
    status, headers, body = client.request("GET", f"{PREFIX}/v2", seldon_model=MODELS[0])
    checker.check(status == 200 and json.loads(body).get("name") == "mlserver", "server metadata GET /v2", body[:200])

    for model in MODELS:
        status, headers, body = client.request("GET", f"{PREFIX}/v2/models/{model}/ready", seldon_model=model)
        checker.check(status == 200, f"{model}: model ready", f"got {status}")
        status, headers, body = client.request("GET", f"{PREFIX}/v2/models/{model}", seldon_model=model)
        metadata = json.loads(body) if status == 200 else {}
        inputs = metadata.get("inputs", [{}])
        checker.check(
            metadata.get("name") == model and inputs[0].get("shape") == [-1, 10, 35],
            f"{model}: metadata declares input_data [-1, 10, 35]",
            f"status {status}: {body[:300]!r}",
        )
        status, headers, body = client.request("POST", f"{PREFIX}/v2/models/{model}/infer", seldon_model=model, body=payload)
        check_inference_reply(checker, status, headers, body, model, f"{model}: infer")
        checker.check(
            headers.get("x-seldon-route") == route_label(model),
            f"{model}: x-seldon-route is {route_label(model)}",
            repr(headers.get("x-seldon-route")),
        )
        check_timing_headers(checker, headers, f"{model}: infer")

    counts = {}
    mismatches = []
    failures = []
    for _ in range(args.requests):
        status, headers, body = client.request(
            "POST", f"{PREFIX}/v2/models/{EXPERIMENT}/infer", seldon_model=EXPERIMENT_HEADER, body=payload
        )
        if status != 200:
            failures.append(f"{status}: {body[:200]!r}")
            continue
        model = model_from_route(headers.get("x-seldon-route", ""))
        counts[model] = counts.get(model, 0) + 1
        if model is None or json.loads(body).get("model_name") != model:
            mismatches.append(f"route {headers.get('x-seldon-route')!r}, reply model {json.loads(body).get('model_name')!r}")
    checker.check(not failures, f"experiment: {args.requests} inferences return 200", "; ".join(failures[:3]))
    checker.check(not mismatches, "experiment: each reply comes from the model its route header names", "; ".join(mismatches[:3]))
    print(f"      experiment routes: {counts}")
    checker.check_split(counts, args.requests)

    status, headers, body = client.request("GET", f"{PREFIX}/v2/health/ready")
    checker.check(
        status == 404 and body == b"" and "x-seldon-route" not in headers,
        "no seldon-model header: Envoy's 404 with an empty body",
        f"got {status} {body[:100]!r}",
    )
    status, headers, body = client.request("GET", f"{PREFIX}/v2/health/ready", seldon_model=MODELS[0], host="other.local")
    checker.check(status == 404 and b"nginx" in body, "other Host: NGINX's own 404 page", f"got {status}")
    status, headers, body = client.request("GET", "/elsewhere/v2/health/ready", seldon_model=MODELS[0])
    checker.check(status == 404 and b"nginx" in body, "path outside /financial-inference/: NGINX's own 404 page", f"got {status}")
    wrong_shape = json.dumps(
        {"inputs": [{"name": "input_data", "shape": [1, 350], "datatype": "FP32", "data": [0.0] * 350}]}
    )
    status, headers, body = client.request(
        "POST", f"{PREFIX}/v2/models/{MODELS[0]}/infer", seldon_model=MODELS[0], body=wrong_shape
    )
    checker.check(
        status == 400 and headers.get("x-seldon-route") == route_label(MODELS[0]),
        "wrong input shape: MLServer's 400, still with x-seldon-route",
        f"got {status} {body[:200]!r}",
    )
    check_timing_headers(checker, headers, "wrong input shape")

    check_metrics(checker, port_from_env("INFERLOAD_TB_MLSERVER_METRICS_PORT", 18092))
    return checker.finish()


def check_metrics(checker: Checker, port: int) -> None:
    """Check that MLServer's Prometheus endpoint counts inferences per model."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_SECONDS)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    text = response.read().decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith("model_infer_request_duration_count{"):
            labels, value = line.rsplit(" ", 1)
            for model in MODELS:
                if f'model="{model}"' in labels:
                    counts[model] = counts.get(model, 0) + float(value)
    for model in MODELS:
        checker.check(
            response.status == 200 and counts.get(model, 0) > 0,
            f"metrics: model_infer_request_duration_count for {model} is above 0",
            f"status {response.status}, count {counts.get(model)}",
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="experiment inferences for the split check (default 200)")
    parser.add_argument("--payload", default=str(DEFAULT_PAYLOAD), help="V2 REST request body to send")
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
