"""The one boundary to Triton: an asyncio gRPC client shared by all requests."""

from __future__ import annotations

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.grpc import KeepAliveOptions
from tritonclient.utils import InferenceServerException

from contract.product import PRODUCT
from gateway.errors import BadImage, ServiceUnavailable, UnfitParameter, UpstreamTimeout

INVALID_ARGUMENT = "StatusCode.INVALID_ARGUMENT"
DEADLINE_EXCEEDED = "StatusCode.DEADLINE_EXCEEDED"
# Triton's status for a model that is not loaded (unknown, unloaded, or failed to load); an unreachable
# Triton is StatusCode.UNAVAILABLE.
MODEL_MISSING = "StatusCode.NOT_FOUND"
TENSOR_TYPES = {int: ("INT32", np.int32), float: ("FP32", np.float32), str: ("BYTES", np.object_),
                bytes: ("BYTES", np.object_)}
MAX_MESSAGE_BYTES = 2**31 - 1
# gRPC backs off up to 2 minutes between reconnects by default; a restarted
# Triton must be found again within a second, not minutes.
RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
HEALTH_TIMEOUT_S = 2.0


def channel_options(keepalive: KeepAliveOptions | None = None) -> list[tuple[str, int]]:
    keepalive = keepalive or KeepAliveOptions()
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", keepalive.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", keepalive.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", int(keepalive.keepalive_permit_without_calls)),
        ("grpc.http2.max_pings_without_data", keepalive.http2_max_pings_without_data),
        *RECONNECT_OPTIONS,
    ]


class TritonClient:
    def __init__(self, url: str) -> None:
        self.url = url
        self._client = grpcclient.InferenceServerClient(url=url, channel_args=channel_options())

    async def close(self) -> None:
        await self._client.close()

    async def infer(self, model: str, image: bytes, parameters: dict[str, int | float | str | bytes],
                    outputs: list[str], timeout_s: float) -> dict[str, np.ndarray]:
        """Run one ensemble on one encoded photo and its parameter (and image part) tensors within
        ``timeout_s``; map Triton failures to gateway errors.

        Cancelling the awaiting task cancels the gRPC call, and with it the request in Triton.
        """
        photo = grpcclient.InferInput(PRODUCT.tensors.image, [1, 1], "BYTES")
        photo.set_data_from_numpy(np.array([[image]], dtype=np.object_))
        inputs = [photo]
        for name, value in parameters.items():
            triton_type, dtype = TENSOR_TYPES[type(value)]
            tensor = grpcclient.InferInput(name, [1, 1], triton_type)
            tensor.set_data_from_numpy(np.array([[value.encode() if isinstance(value, str) else value]], dtype=dtype))
            inputs.append(tensor)
        try:
            result = await self._client.infer(
                model,
                inputs,
                outputs=[grpcclient.InferRequestedOutput(name) for name in outputs],
                client_timeout=timeout_s,
            )
        except InferenceServerException as exc:
            raise _translate(exc, model) from None
        return {name: result.as_numpy(name) for name in outputs}

    async def model_readiness(self, models: list[str]) -> dict[str, bool]:
        """Readiness of each model; all False when Triton cannot be reached."""
        try:
            if not await self._client.is_server_live(client_timeout=HEALTH_TIMEOUT_S):
                return dict.fromkeys(models, False)
            return {m: bool(await self._client.is_model_ready(m, client_timeout=HEALTH_TIMEOUT_S)) for m in models}
        except InferenceServerException:
            return dict.fromkeys(models, False)


def _translate(exc: InferenceServerException, model: str) -> Exception:
    """Triton's status code says what failed. Only text our own steps marked for the caller
    (``PRODUCT.step_error_marker``) is echoed; any other Triton text stays in Triton's log."""
    status = exc.status() or ""
    message = exc.message() or ""
    marker = PRODUCT.step_error_marker
    if status == INVALID_ARGUMENT and marker in message:
        text = message.split(marker, 1)[1]
        if text.startswith(PRODUCT.parameter_error_prefix):
            return UnfitParameter(text.removeprefix(PRODUCT.parameter_error_prefix), code="invalid_parameter")
        return BadImage(text, code="undecodable_image")
    if status == DEADLINE_EXCEEDED:
        return UpstreamTimeout("inference did not finish within the request budget; retry later or send a smaller "
                               "photo (max_side also helps)")
    if status == MODEL_MISSING:
        return ServiceUnavailable(f"the model behind this endpoint ({model}) is not loaded; the other endpoints "
                                  "may still work, see /readyz", code="model_unavailable")
    return ServiceUnavailable("the inference service is unavailable; retry shortly")
