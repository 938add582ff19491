"""The peer: rembg's own HTTP server (``rembg s``) on the catalog's U2-Netp file, started, called and stopped.

rembg 2.0.86 runs from its own venv (``.venv-peer``, ``load_tests/requirements-peer.txt``: it needs numpy 2) and
offline: ``U2NET_HOME`` is a temporary folder holding a link to the file our ``matte_object_lite`` serves (the
catalog's verified U2-Netp, md5 8e83ca70e441ab06c318d82300c84806, which rembg accepts without a download), and
every proxy variable points at a closed port, so a download attempt fails at once instead of fetching weights.
Threads as our model's: ``OMP_NUM_THREADS=2`` (rembg sets its ONNX Runtime intra- and inter-op threads from it;
ours runs 1 instance x 2 intra-op threads). Everything else is rembg's own: its thread pool, its PNG encoder.
``POST /api/remove`` takes the multipart field ``file`` and the form fields ``model=u2netp`` and ``om=true``
(the mask alone; without it, the cutout).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from converters.catalog import load_catalog
from converters.fetch import fetch_source
from load_tests.closed_loop import HttpTarget
from load_tests.peer_section import MODEL
from load_tests.png_check import BadResponse, check_png
from load_tests.services import REPO
from load_tests.traffic_mix import photo_jpeg
from stack.gateway import wait_until_ok
from stack.ports import free_port
from stack.processes import stop_process

PEER_VENV = REPO / ".venv-peer"
INSTALL = "make .venv-peer/.installed"
REMBG_MODEL = "u2netp"
THREADS = 2
READY_TIMEOUT_S = 120.0
CLOSED_PROXY = "http://127.0.0.1:9"  # the discard port, closed: any download fails at once
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
BOUNDARY = "imageserve-peer-form-boundary"


@dataclass(frozen=True)
class RunningPeer:
    """A started ``rembg s``: its port and pid, the model folder it reads (``U2NET_HOME``) and its log."""

    port: int
    pid: int
    model_home: Path
    log: Path


def versions(venv: Path = PEER_VENV) -> dict[str, str]:
    """rembg's and its runtime's versions as installed in the peer's venv."""
    site = [str(path) for path in venv.glob("lib/python*/site-packages")]
    found = {dist.metadata["Name"].lower(): dist.version for dist in metadata.distributions(path=site)}
    return {name: found.get(name, "not installed") for name in ("rembg", "onnxruntime", "numpy", "pillow")}


def _environment(model_home: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name.upper() not in {"NO_PROXY", "MODEL_CHECKSUM_DISABLED", "REMBG_HOME", *PROXY_VARIABLES}}
    return {**env, **{name: CLOSED_PROXY for upper in PROXY_VARIABLES for name in (upper, upper.lower())},
            "U2NET_HOME": str(model_home), "OMP_NUM_THREADS": str(THREADS),
            # rembg opens a web browser at its URL on start; `true` makes that a no-op (Chromium is installed here)
            "BROWSER": "true"}


def _log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"
    except OSError:
        return "(no log)"


@contextmanager
def running_peer(venv: Path = PEER_VENV, timeout_s: float = READY_TIMEOUT_S) -> Iterator[RunningPeer]:
    """``rembg s`` on a free port, ready once it has answered a mask (the model loaded offline); always stopped."""
    rembg = venv / "bin" / "rembg"
    if not rembg.exists():
        raise RuntimeError(f"{rembg} not found: rembg's server needs its own venv; run `{INSTALL}` "
                           "(load_tests/requirements-peer.txt; `make bench` and `make test` build it)")
    source = fetch_source(load_catalog()[MODEL])  # the catalog's file, sha256-verified (cached by `make models`)
    with tempfile.TemporaryDirectory(prefix="imageserve-peer-") as tmp:
        home, log = Path(tmp) / "u2net", Path(tmp) / "rembg.log"
        home.mkdir()
        (home / f"{REMBG_MODEL}.onnx").symlink_to(source)
        port, deadline = free_port(), time.monotonic() + timeout_s
        with log.open("ab") as output:
            process = subprocess.Popen([str(rembg), "s", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
                                       env=_environment(home), stdout=output, stderr=subprocess.STDOUT)
        try:
            try:
                wait_until_ok(f"http://127.0.0.1:{port}/api", process, timeout_s)
                remove(port, photo_jpeg("0.3MP"), mask_only=True, timeout_s=max(1.0, deadline - time.monotonic()))
            except (RuntimeError, OSError) as exc:
                raise RuntimeError(
                    f"rembg's server (`{rembg} s`, port {port}) was not ready within {timeout_s:.0f} s: {exc}. "
                    f"Check that `{INSTALL}` completed (it also compiles pymatting's numba cache, ~1 minute once; "
                    "without it every start spends that) and that the machine is not overloaded, or give a longer "
                    f"timeout. Its log:\n{_log_tail(log)}") from None
            yield RunningPeer(port, process.pid, home, log)
        finally:
            stop_process(process)


def form(photo: bytes, mask_only: bool) -> bytes:
    """The multipart body of ``POST /api/remove``: the photo as ``file``, ``model=u2netp``, ``om=true|false``."""
    fields = [("model", REMBG_MODEL), ("om", "true" if mask_only else "false")]
    parts = [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
             "Content-Type: image/jpeg\r\n\r\n".encode("latin-1") + photo + b"\r\n"]
    parts += [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode("latin-1")
              for name, value in fields]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode("latin-1")


CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def remove(port: int, photo: bytes, mask_only: bool, timeout_s: float = 120.0) -> bytes:
    """One call: the PNG rembg answers (the 8-bit mask, or the RGBA cutout); an error names its status and body."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/remove", data=form(photo, mask_only),
                                     headers={"Content-Type": CONTENT_TYPE}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"rembg answered HTTP {exc.code}: {exc.read()[:300]!r}") from None


class PeerTarget(HttpTarget):
    """The closed loop's HTTP target, posting rembg's form: the mask (``om=true``) for a mask operation, else the
    cutout; an answer counts if it is a 200 PNG of the photo's size and the operation's kind (no billing, no
    headers of ours)."""

    def build_request(self, photo: bytes, api_key: str) -> bytes:
        kind = self.operation.name.split("_")[0]
        if kind not in ("mask", "cutout"):
            raise ValueError(f"rembg's server answers masks and cutouts, not {self.operation.name}")
        body = form(photo, mask_only=kind == "mask")
        return (f"POST /api/remove HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nContent-Type: {CONTENT_TYPE}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body

    def check(self, status: int, headers: dict[str, str], body: bytes) -> None:
        if status != 200:
            raise BadResponse(f"rembg: HTTP {status}: {body[:200]!r}")
        if headers.get("content-type") != "image/png":
            raise BadResponse(f"rembg: Content-Type {headers.get('content-type')!r}, expected image/png")
        check_png(body, self.size, self.operation.png_kind)
