"""The HTTP/1.1 connection: uvicorn's httptools protocol with a bound on the request head.

httptools buffers a request line and headers of any size, and uvicorn joins the URL piece by
piece: a 32 MB header cost seconds of CPU (growing quadratically) and unbounded memory before the
app saw anything. Here a head (request line and headers) over ``MAX_HEAD_BYTES`` is answered 431
and the connection closed, before the parser sees the bytes past the bound.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Browsers and HTTP libraries send well under 8 KiB; nginx's default buffers take 4 x 8 KiB.
MAX_HEAD_BYTES = 32 * 1024
HEAD_END = b"\r\n\r\n"


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    _head_bytes = 0  # bytes of the current request's head received so far
    _in_head = True

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # the next bytes on this connection are the next request's head
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            end = data.find(HEAD_END)
            head_part = len(data) if end < 0 else end + len(HEAD_END)
            if self._head_bytes + head_part > MAX_HEAD_BYTES:
                self._refuse_head()
                return
            self._head_bytes += head_part
        super().data_received(data)

    def _refuse_head(self) -> None:
        body = json.dumps({"error": {
            "code": "request_header_fields_too_large",
            "message": f"the request line and headers are over {MAX_HEAD_BYTES} bytes; send a shorter URL "
                       "and fewer or smaller headers",
        }}).encode()
        self.transport.write(b"".join([
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]))
        self.transport.close()
