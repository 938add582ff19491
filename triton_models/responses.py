"""Run a handler per request, turning failures into per-request errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import triton_python_backend_utils as pb_utils

from contract.product import PRODUCT
from imaging.errors import ImageError, ParameterError
from triton_models.model_calls import ModelUnavailable


def respond_each(requests: list, handle: Callable[[Any], list], logger: Any) -> list:
    """One response per request; a failing request gets an error and the loop goes on."""
    responses = []
    for request in requests:
        try:
            responses.append(pb_utils.InferenceResponse(output_tensors=handle(request)))
        except ImageError as exc:  # a problem with the caller's photo or parameters: marked, so the gateway echoes it
            kind = PRODUCT.parameter_error_prefix if isinstance(exc, ParameterError) else ""
            responses.append(error_response(PRODUCT.step_error_marker + kind + str(exc),
                                            pb_utils.TritonError.INVALID_ARG))
        except ModelUnavailable as exc:  # a model this step calls is not loaded: the endpoint is unavailable
            logger.log_error(f"request failed: {exc}")
            responses.append(error_response(f"a model this step calls is not loaded: {exc}",
                                            pb_utils.TritonError.NOT_FOUND))
        except Exception as exc:  # noqa: BLE001 (reported to the caller, the model keeps serving)
            logger.log_error(f"request failed: {type(exc).__name__}: {exc}")
            responses.append(error_response(f"internal error: {type(exc).__name__}", pb_utils.TritonError.INTERNAL))
    return responses


def error_response(message: str, code: int) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(message, code))
