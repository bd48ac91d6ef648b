"""MLServer runtime for the testbed's financial classifiers.

Each model takes one FP32 tensor ``input_data`` of shape [N, 10, 35]
(10 time steps of 35 features), flattens each row to the 350 features the
scikit-learn model was trained on, and returns two outputs:

- ``probabilities``: FP32 [N, n_classes], from ``predict_proba``
- ``predicted_class``: INT64 [N], the class with the highest probability

A request may name a subset of these outputs. Inputs arrive decoded by
MLServer from REST JSON, gRPC typed contents or gRPC ``raw_input_contents``.
"""

import joblib
import numpy as np

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

INPUT_NAME = "input_data"
TIME_STEPS = 10
FEATURES_PER_STEP = 35
PROBABILITIES_OUTPUT = "probabilities"
PREDICTED_CLASS_OUTPUT = "predicted_class"
OUTPUT_NAMES = (PROBABILITIES_OUTPUT, PREDICTED_CLASS_OUTPUT)


class FinancialClassifier(MLModel):
    """Serves a joblib-persisted scikit-learn classifier on [N, 10, 35] inputs."""

    async def load(self) -> bool:
        model_uri = await get_model_uri(self._settings)
        self._model = joblib.load(model_uri)
        expected = TIME_STEPS * FEATURES_PER_STEP
        if self._model.n_features_in_ != expected:
            raise ValueError(
                f"model at {model_uri} expects {self._model.n_features_in_} features, "
                f"but this runtime sends {expected} ({TIME_STEPS} x {FEATURES_PER_STEP})"
            )
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        rows = self._decode_rows(payload)
        requested = self._requested_outputs(payload)

        probabilities = self._model.predict_proba(rows).astype(np.float32)
        outputs = []
        if PROBABILITIES_OUTPUT in requested:
            outputs.append(NumpyCodec.encode_output(PROBABILITIES_OUTPUT, probabilities))
        if PREDICTED_CLASS_OUTPUT in requested:
            classes = self._model.classes_[probabilities.argmax(axis=1)].astype(np.int64)
            outputs.append(NumpyCodec.encode_output(PREDICTED_CLASS_OUTPUT, classes))

        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=outputs,
        )

    def _decode_rows(self, payload: InferenceRequest) -> np.ndarray:
        """Return the input tensor as a float32 [N, 350] array, or raise InferenceError."""
        matching = [request_input for request_input in payload.inputs if request_input.name == INPUT_NAME]
        if not matching:
            names = [request_input.name for request_input in payload.inputs]
            raise InferenceError(f"input '{INPUT_NAME}' is missing (inputs received: {names})")
        request_input = matching[0]

        shape = list(request_input.shape)
        if len(shape) != 3 or shape[1:] != [TIME_STEPS, FEATURES_PER_STEP] or shape[0] < 1:
            raise InferenceError(
                f"input '{INPUT_NAME}' has shape {shape}; expected [N, {TIME_STEPS}, {FEATURES_PER_STEP}] with N >= 1"
            )
        if request_input.datatype != "FP32":
            raise InferenceError(f"input '{INPUT_NAME}' has datatype {request_input.datatype}; expected FP32")

        try:
            tensor = NumpyCodec.decode_input(request_input)
        except ValueError as error:
            raise InferenceError(f"input '{INPUT_NAME}' data does not match its shape {shape}: {error}") from error
        return tensor.reshape(shape[0], TIME_STEPS * FEATURES_PER_STEP)

    def _requested_outputs(self, payload: InferenceRequest) -> tuple:
        """Return the output names that the request names, or all outputs when it names none."""
        if not payload.outputs:
            return OUTPUT_NAMES
        requested = tuple(request_output.name for request_output in payload.outputs)
        unknown = [name for name in requested if name not in OUTPUT_NAMES]
        if unknown:
            raise InferenceError(f"unknown outputs {unknown}; this model returns {list(OUTPUT_NAMES)}")
        return requested
