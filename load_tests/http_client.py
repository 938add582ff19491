"""A minimal asyncio HTTP/1.1 keep-alive client for the load generator.

The benchmark compares the gateway with Triton over gRPC on 2 cores, where
the client shares the CPU with the servers: a general-purpose client (httpx)
costs several hundred microseconds of Python per request, which would be
counted as gateway overhead. This one writes one request and reads one
``Content-Length`` response per call on a persistent connection, nothing more
(no redirects, no chunked bodies, no TLS): enough for uvicorn, refused loudly
otherwise.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

READ_LIMIT = 1 << 20


class HttpProtocolError(RuntimeError):
    """The server answered something this client does not handle."""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class HttpConnection:
    """One persistent connection; ``await post(...)`` one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=READ_LIMIT)

    async def post(self, target: str, body: bytes, headers: dict[str, str]) -> HttpResponse:
        if self._writer is None:
            await self._connect()
        assert self._reader is not None and self._writer is not None
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._writer.write(
            f"POST {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n{head}\r\n"
            .encode("latin-1") + body
        )
        try:
            return await self._read_response()
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            raise

    async def _read_response(self) -> HttpResponse:
        assert self._reader is not None
        raw = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *lines = raw.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HttpProtocolError(f"bad status line {status_line!r}")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise HttpProtocolError(f"response without Content-Length (headers {sorted(headers)})")
        body = await self._reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return HttpResponse(int(parts[1]), headers, body)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except ConnectionError:
                pass
        self._reader = self._writer = None
