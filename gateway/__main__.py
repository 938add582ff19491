"""``python -m gateway``: serve the gateway with uvicorn using ``GATEWAY_*`` settings.

On SIGTERM uvicorn stops accepting connections, lets requests in flight finish
for up to ``GATEWAY_SHUTDOWN_GRACE_S`` seconds, then exits.
"""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from gateway.settings import GatewaySettings


def main() -> int:
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        print(f"invalid gateway settings (GATEWAY_* environment variables):\n{exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        "gateway.app:create_app", factory=True, host=settings.host, port=settings.port,
        access_log=False, server_header=False, timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
