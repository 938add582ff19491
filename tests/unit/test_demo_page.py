"""The demo page (``GET /demo``, gateway/routes/demo.py) and the offline /docs, in process.

tests/e2e/test_demo.py drives the same page in a real headless Chromium against the real Triton.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from gateway.routes.demo import ASSETS, DEMO_DIR
from gateway.security_headers import API_CSP, DEMO_CSP
from tests.conftest import Database
from tests.unit.app_client import make_client

CSP = "content-security-policy"
# Attributes and CSS that load something: src="...", href="...", url(...).
REFERENCE = re.compile(r"""(?:\b(?:src|href)\s*=\s*["']([^"']*)["'])|(?:(?<![\w.])url\(\s*["']?([^)"']*))""",
                       re.IGNORECASE)
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)  # demo.js has no "//" outside comments (no URLs)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'gateway.db'}", None)
    yield from make_client(database)


def references(text: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(text)]


def test_demo_serves_the_page_and_its_files_with_the_demo_csp(client: TestClient) -> None:
    page = client.get("/demo")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers[CSP] == DEMO_CSP[1].decode()
    assert "script-src 'self'" in page.headers[CSP] and "unsafe-inline" not in page.headers[CSP]
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
    assert '<script src="/demo/demo.js" defer></script>' in page.text
    assert '<link rel="stylesheet" href="/demo/demo.css">' in page.text
    for name, media_type in (("demo.js", "text/javascript"), ("demo.css", "text/css")):
        response = client.get(f"/demo/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(media_type)
        assert response.headers[CSP] == DEMO_CSP[1].decode()
        assert response.content == (DEMO_DIR / name).read_bytes()
    assert client.get("/demo/index.html").content == page.content


def test_the_api_keeps_its_own_csp(client: TestClient) -> None:
    for path in ("/healthz", "/demonstration", "/v1/usage"):
        assert client.get(path).headers[CSP] == API_CSP[1].decode(), path


@pytest.mark.parametrize("path", [
    "/demo/../gateway/settings.py",  # the client resolves the dots: /gateway/settings.py
    "/demo/..%2Fgateway%2Fsettings.py",  # the server decodes it to /demo/../gateway/settings.py
    "/demo/..%2F..%2Fgateway%2Fsettings.py",
    "/demo/%2e%2e/gateway/settings.py",
    "/demo/%2e%2e%2fsettings.py",
    "/demo/%2e%2e",
    "/demo/settings.py",
    "/demo/demo.py",
    "/demo/__init__.py",
    "/demo/demo.js%00.py",
    "/demo/DEMO.JS",
    "/demo/%2Fetc%2Fpasswd",
])
def test_demo_serves_nothing_but_its_files(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 404, path
    assert response.json()["error"]["code"] == "not_found"
    assert "GatewaySettings" not in response.text and "root:" not in response.text


def test_demo_files_are_exactly_the_served_ones_and_load_nothing_from_elsewhere() -> None:
    files = {path.name: path for path in DEMO_DIR.rglob("*") if path.is_file()}
    assert set(files) == set(ASSETS)  # a file added to gateway/demo/ must be added to the allow-list too
    for name, path in files.items():
        text = path.read_text()
        assert not re.search(r"https?:", text, re.IGNORECASE), f"{name} names another origin"
        for reference in references(text):
            assert not reference.startswith("//"), f"{name}: protocol-relative {reference!r}"
            assert reference.startswith(("/demo/", "/docs", "data:", "#")), f"{name}: {reference!r}"


def test_demo_script_shows_data_as_text_and_keeps_the_key_in_memory() -> None:
    script = COMMENT.sub("", (DEMO_DIR / "demo.js").read_text())
    for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                      "localStorage", "sessionStorage", "document.cookie", "indexedDB"):
        assert forbidden not in script, forbidden
    assert "textContent" in script and "URL.createObjectURL" in script
    assert 'fetch(`/v1/${operation}?${query}`' in script  # same origin, a relative URL
    assert "Authorization: `Bearer ${apiKey}`" in script
    page = (DEMO_DIR / "index.html").read_text()
    # No inline script, style or event handler: the CSP would block them.
    assert not re.search(r"<script(?![^>]*\ssrc=)", page) and not re.search(r"<style|\sstyle\s*=", page)
    assert not re.search(r"\son[a-z]+\s*=", page)


@pytest.mark.parametrize("docs", ["/docs", "/redoc"])
def test_docs_load_only_local_assets(client: TestClient, docs: str) -> None:
    page = client.get(docs)
    assert page.status_code == 200
    assert not re.search(r"https?:", page.text, re.IGNORECASE), page.text
    assets = [ref for ref in references(page.text) if ref]
    assert assets, page.text
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        response = client.get(asset)
        assert response.status_code == 200, asset
    scripts = [asset for asset in assets if asset.endswith(".js")]
    assert scripts and all(len(client.get(script).content) > 500_000 for script in scripts)  # the real bundles
    assert client.get("/openapi.json").json()["info"]["title"] == "imageserve"


def test_demo_is_not_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/demo")]
