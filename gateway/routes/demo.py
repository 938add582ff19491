"""``GET /demo``: a page for app developers that calls the API from their browser with a key they paste.

The page is three static files of ``gateway/demo/`` (plain JavaScript, no framework, no build step, nothing
fetched from outside this origin). Only the files of ``ASSETS`` are served, by name: a path that is not one of
them (``..``, an encoded slash, another file of the package) is a 404 and no file system path is ever built
from the request. Their Content-Security-Policy is ``security_headers.DEMO_CSP`` (``middleware.ResponseHeaders``
picks it for ``/demo`` and ``/demo/...``): the page's own scripts and styles, results shown from ``blob:`` URLs,
``fetch`` to this origin only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.exceptions import HTTPException

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
PAGE = "index.html"
# The files the page is made of: name -> media type. Nothing else under /demo exists.
ASSETS = {
    PAGE: "text/html; charset=utf-8",
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
}

router = APIRouter(tags=["demo"], include_in_schema=False)


@cache
def _read(name: str) -> bytes:
    """The bytes of one asset of ``ASSETS``, read once per process."""
    return (DEMO_DIR / name).read_bytes()


def _asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404)
    return Response(_read(name), media_type=ASSETS[name])


@router.get("/demo", summary="The demo page: paste a key, drop a photo, see depth, matte, cutout and the edits")
async def page() -> Response:
    return _asset(PAGE)


@router.get("/demo/{asset}", summary="A file of the demo page (index.html, demo.js, demo.css)")
async def asset(asset: str) -> Response:
    return _asset(asset)
