"""Train the testbed's two classifiers and persist them with joblib.

Both models learn the same synthetic binary task (scikit-learn's
make_classification, fixed seed) on 350 features, which the runtime receives
as a [10, 35] tensor per row:

- baseline-predictor: logistic regression
- enhanced-predictor: a small gradient-boosting ensemble (40 trees of depth 3)

Both predict one row in well under a millisecond, so that MLServer's request
handling, not the model, dominates the latency of a single request.

Usage: train_models.py OUTPUT_DIR  (writes OUTPUT_DIR/<model>/model.joblib)
"""

import json
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

SEED = 42
FEATURES = 10 * 35
TRAIN_ROWS = 3000
TEST_ROWS = 1000


def build_models() -> dict:
    return {
        "baseline-predictor": LogisticRegression(max_iter=2000, random_state=SEED),
        "enhanced-predictor": GradientBoostingClassifier(
            n_estimators=40, max_depth=3, subsample=0.8, random_state=SEED
        ),
    }


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: train_models.py OUTPUT_DIR", file=sys.stderr)
        return 2
    output_dir = Path(sys.argv[1])

    features, labels = make_classification(
        n_samples=TRAIN_ROWS + TEST_ROWS,
        n_features=FEATURES,
        n_informative=40,
        n_redundant=20,
        n_classes=2,
        random_state=SEED,
    )
    features = features.astype(np.float32)
    train_x, test_x = features[:TRAIN_ROWS], features[TRAIN_ROWS:]
    train_y, test_y = labels[:TRAIN_ROWS], labels[TRAIN_ROWS:]

    for name, model in build_models().items():
        started = time.perf_counter()
        model.fit(train_x, train_y)
        fit_seconds = time.perf_counter() - started

        model_dir = output_dir / name
        model_dir.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, model_dir / "model.joblib")
        summary = {
            "model": name,
            "estimator": type(model).__name__,
            "scikit_learn": sklearn.__version__,
            "seed": SEED,
            "features": FEATURES,
            "test_accuracy": round(float(model.score(test_x, test_y)), 4),
            "fit_seconds": round(fit_seconds, 2),
        }
        (model_dir / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
