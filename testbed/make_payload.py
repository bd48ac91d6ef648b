"""Write the V2 REST inference request used by the financial A/B scenario.

The tensor is one row of 10 time steps x 35 features, flattened in row-major
order as the V2 protocol's "data" field expects. Each feature is a
standardized (z-score) series that follows an AR(1) process over the 10
steps, with a persistence between 0.3 and 0.9 and an occasional fat-tailed
shock, as market features such as returns, volatility or volume often do.
The generator is seeded and uses only the standard library, so any Python 3
writes the same file.

Usage: make_payload.py [OUTPUT]  (default: scenarios/payloads/financial-1x10x35.json)
"""

import json
import random
import sys
from pathlib import Path

SEED = 20240611
TIME_STEPS = 10
FEATURES = 35
SHOCK_PROBABILITY = 0.05
SHOCK_SCALE = 3.0
DECIMALS = 4
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "scenarios" / "payloads" / "financial-1x10x35.json"


def generate_rows(rng: random.Random) -> list:
    """Return TIME_STEPS rows of FEATURES standardized values."""
    persistence = [rng.uniform(0.3, 0.9) for _ in range(FEATURES)]
    current = [rng.gauss(0.0, 1.0) for _ in range(FEATURES)]
    rows = []
    for _ in range(TIME_STEPS):
        row = []
        for feature in range(FEATURES):
            phi = persistence[feature]
            # Innovations scaled so that the stationary variance stays 1.
            innovation = rng.gauss(0.0, (1.0 - phi * phi) ** 0.5)
            if rng.random() < SHOCK_PROBABILITY:
                innovation += rng.choice((-1.0, 1.0)) * SHOCK_SCALE * rng.random()
            current[feature] = phi * current[feature] + innovation
            row.append(round(current[feature], DECIMALS))
        rows.append(row)
    return rows


def main() -> int:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    rows = generate_rows(random.Random(SEED))
    request = {
        "inputs": [
            {
                "name": "input_data",
                "shape": [1, TIME_STEPS, FEATURES],
                "datatype": "FP32",
                "data": [value for row in rows for value in row],
            }
        ]
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(request) + "\n")
    print(f"wrote {output} ({TIME_STEPS * FEATURES} values)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
