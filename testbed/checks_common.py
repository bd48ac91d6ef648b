"""Helpers shared by check_rest.py and check_grpc.py."""

import json
import math
import os
import sys
from pathlib import Path

TESTBED_DIR = Path(__file__).resolve().parent
DEFAULT_PAYLOAD = TESTBED_DIR.parent / "scenarios" / "payloads" / "financial-1x10x35.json"

MODELS = ("baseline-predictor", "enhanced-predictor")
EXPERIMENT = "financial-ab-test-experiment"
EXPERIMENT_HEADER = EXPERIMENT + ".experiment"
# Share of the experiment's traffic that Envoy sends to each model.
EXPERIMENT_WEIGHTS = {"baseline-predictor": 0.7, "enhanced-predictor": 0.3}
# A share passes when it lies within this many binomial standard deviations
# of its weight. With 4, a correct 70/30 split fails about once in 15,000 runs,
# while a reversed or one-sided split fails at 100 requests or more.
SPLIT_TOLERANCE_SIGMAS = 4.0


def port_from_env(variable: str, default: int) -> int:
    return int(os.environ.get(variable, default))


def route_label(model: str) -> str:
    """Return the x-seldon-route value Envoy adds for a model: ":<model>_1:"."""
    return f":{model}_1:"


def model_from_route(label: str):
    """Return the model named by an x-seldon-route label, or None."""
    for model in MODELS:
        if label == route_label(model):
            return model
    return None


def load_payload_values(path: Path) -> tuple:
    """Return (shape, flat float list) of the first input of a V2 REST request file."""
    request = json.loads(path.read_text())
    tensor = request["inputs"][0]
    return tensor["shape"], tensor["data"]


class Checker:
    """Counter of passed and failed checks that prints each result and, from finish(), the summary line."""

    def __init__(self, name: str):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, condition: bool, description: str, detail: str = "") -> bool:
        if condition:
            self.passed += 1
            print(f"ok    {description}")
        else:
            self.failed += 1
            print(f"FAIL  {description}" + (f": {detail}" if detail else ""))
        return condition

    def check_split(self, counts: dict, total: int) -> None:
        """Check that each model's share of total is near its experiment weight."""
        for model, weight in EXPERIMENT_WEIGHTS.items():
            share = counts.get(model, 0) / total if total else 0.0
            margin = SPLIT_TOLERANCE_SIGMAS * math.sqrt(weight * (1 - weight) / max(total, 1))
            self.check(
                abs(share - weight) <= margin,
                f"experiment share of {model} is {share:.2f} over {total} requests "
                f"(weight {weight:.2f}, allowed +/- {margin:.2f})",
            )

    def finish(self) -> int:
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        sys.stdout.flush()
        return 0 if self.failed == 0 else 1


def is_seconds(value) -> bool:
    """Return whether an NGINX timing header value is a number of seconds like 0.003."""
    try:
        return value is not None and float(value) >= 0
    except ValueError:
        return False


def is_whole_milliseconds(value) -> bool:
    """Return whether a header value is a whole number of milliseconds, as Envoy writes them."""
    return value is not None and value.isdigit()
