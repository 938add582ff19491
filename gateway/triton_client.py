"""The one boundary to Triton: an asyncio gRPC client shared by all requests."""

from __future__ import annotations

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from gateway.errors import BadImage, ServiceUnavailable, UpstreamTimeout

INVALID_ARGUMENT = "StatusCode.INVALID_ARGUMENT"
DEADLINE_EXCEEDED = "StatusCode.DEADLINE_EXCEEDED"


class TritonClient:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._client = grpcclient.InferenceServerClient(url=url)

    async def close(self) -> None:
        await self._client.close()

    async def infer(self, model: str, image: bytes, max_side: int, outputs: list[str]) -> dict[str, np.ndarray]:
        """Run one ensemble on one encoded photo; map Triton failures to gateway errors."""
        photo = grpcclient.InferInput("IMAGE", [1, 1], "BYTES")
        photo.set_data_from_numpy(np.array([[image]], dtype=np.object_))
        side = grpcclient.InferInput("MAX_SIDE", [1, 1], "INT32")
        side.set_data_from_numpy(np.array([[max_side]], dtype=np.int32))
        try:
            result = await self._client.infer(
                model,
                [photo, side],
                outputs=[grpcclient.InferRequestedOutput(name) for name in outputs],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            raise _translate(exc) from None
        return {name: result.as_numpy(name) for name in outputs}

    async def model_readiness(self, models: list[str]) -> dict[str, bool]:
        """Readiness of each model; all False when Triton cannot be reached."""
        try:
            if not await self._client.is_server_ready(client_timeout=2.0):
                return dict.fromkeys(models, False)
            return {m: bool(await self._client.is_model_ready(m, client_timeout=2.0)) for m in models}
        except InferenceServerException:
            return dict.fromkeys(models, False)


def _translate(exc: InferenceServerException) -> Exception:
    status = exc.status() or ""
    message = exc.message() or ""
    if status == INVALID_ARGUMENT:
        # Raised by our preprocess step: the message is ours and names the problem.
        return BadImage(message.removeprefix("[StatusCode.INVALID_ARGUMENT] "), code="undecodable_image")
    if status == DEADLINE_EXCEEDED or "Deadline Exceeded" in message:
        return UpstreamTimeout("inference did not finish within the deadline; retry later or send a smaller photo")
    return ServiceUnavailable("the inference service is unavailable; retry shortly")
