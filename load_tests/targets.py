"""The three ways the benchmark calls the same operation on the same photo.

- ``TritonGrpcTarget``: the Triton ensemble over gRPC (KServe v2), one shared
  asyncio channel, as internal services and the gateway itself call it;
- ``HttpTarget``: an HTTP endpoint (the gateway, or the naive baseline), one
  keep-alive connection per worker.

Every response is checked (status, PNG size and kind) before it counts.
"""

from __future__ import annotations

import numpy as np
import tritonclient.grpc.aio as grpcclient

from load_tests.http_client import HttpConnection
from load_tests.operations import Operation
from load_tests.png_check import BadResponse, check_png


class TritonGrpcTarget:
    def __init__(self, url: str, operation: Operation, photo: bytes, size: tuple[int, int]) -> None:
        self.url = url
        self.operation = operation
        self.photo = photo
        self.size = size
        self._client: grpcclient.InferenceServerClient | None = None

    async def open(self, workers: int) -> None:
        self._client = grpcclient.InferenceServerClient(url=self.url)

    async def send(self, worker: int) -> None:
        assert self._client is not None
        image = grpcclient.InferInput("IMAGE", [1, 1], "BYTES")
        image.set_data_from_numpy(np.array([[self.photo]], dtype=np.object_))
        side = grpcclient.InferInput("MAX_SIDE", [1, 1], "INT32")
        side.set_data_from_numpy(np.zeros((1, 1), dtype=np.int32))
        result = await self._client.infer(
            self.operation.ensemble, [image, side],
            outputs=[grpcclient.InferRequestedOutput(name) for name in self.operation.triton_outputs],
        )
        check_png(bytes(result.as_numpy(self.operation.png_output).reshape(-1)[0]), self.size, self.operation.png_kind)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class HttpTarget:
    def __init__(self, port: int, operation: Operation, photo: bytes, size: tuple[int, int], api_key: str = "") -> None:
        self.port = port
        self.operation = operation
        self.photo = photo
        self.size = size
        self.headers = {"Content-Type": "image/jpeg"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self._connections: list[HttpConnection] = []

    async def open(self, workers: int) -> None:
        self._connections = [HttpConnection("127.0.0.1", self.port) for _ in range(workers)]

    async def send(self, worker: int) -> None:
        response = await self._connections[worker].post(self.operation.http_path, self.photo, self.headers)
        if response.status != 200:
            raise BadResponse(f"HTTP {response.status}: {response.body[:200]!r}")
        check_png(response.body, self.size, self.operation.png_kind)

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()
        self._connections = []
