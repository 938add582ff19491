"""The headers that keep browsers from sniffing, framing or caching API responses: added to every answer
by ``middleware.ResponseHeaders``, and by the 500 handler, whose answers bypass the middleware."""

from __future__ import annotations

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
# The demo page (gateway/routes/demo.py): its own scripts and styles only, results shown from blob: URLs, calls to
# this origin only; nothing inline, nothing from elsewhere, no forms, no framing.
DEMO_CSP = (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
            b"img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            b"frame-ancestors 'none'")
NO_STORE = (b"cache-control", b"no-store")


def as_dict() -> dict[str, str]:
    """Every header of an API answer, for a response built outside the middleware."""
    return {name.decode(): value.decode() for name, value in [*SECURITY_HEADERS, API_CSP, NO_STORE]}
