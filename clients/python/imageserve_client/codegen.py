"""Writes ``operations.py`` from the gateway's OpenAPI document: ``python -m imageserve_client.codegen SOURCE``.

SOURCE is a file or an ``http(s)://.../openapi.json`` URL; the module is written to stdout (or ``--out``).
The document is the gateway's own (``GET /openapi.json``, or ``app.openapi()`` in process), which it derives
from the product declaration, so regenerating after a parameter, variant or operation is added keeps the
client's tables equal to the service; the main test suite checks that they are.

Only the parts of the document the client relies on are kept (see ``spec.py``): no descriptions or examples,
so rewording the documentation does not change the client.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .spec import COMMON_HEADERS, PHOTO_FIELD, TAGS, Operation, Param

LINE = 120
HEADER = '''"""The client's operation tables, generated from the gateway's OpenAPI document: do not edit by hand.

Regenerate with ``python -m imageserve_client.codegen http://127.0.0.1:8080/openapi.json --out
clients/python/imageserve_client/operations.py`` (or from a saved document); tests/unit/test_python_client.py
fails while these differ from the document the gateway serves.
"""

from __future__ import annotations

from .spec import Operation, Param

'''


def param_from_document(entry: dict[str, Any]) -> Param:
    """A query parameter; an optional one's schema is ``anyOf: [{type...}, {type: null}]`` with some bounds
    beside the ``anyOf`` (FastAPI puts ``ge`` inside and extra keywords outside), so both levels are merged."""
    schema = {key: value for key, value in entry["schema"].items() if key != "anyOf"}
    for option in entry["schema"].get("anyOf", ()):
        if option.get("type") != "null":
            schema = {**option, **schema}
    return Param(
        name=entry["name"],
        type=schema["type"],
        default=schema.get("default"),
        enum=tuple(schema.get("enum", ())),
        minimum=schema.get("minimum"),
        maximum=schema.get("maximum"),
        pattern=schema.get("pattern", ""),
    )


def operation_from_document(path: str, method: str, spec: dict[str, Any]) -> Operation:
    params = tuple(param_from_document(p) for p in spec.get("parameters", ()) if p["in"] == "query")
    form = spec.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
    parts = tuple(name for name in form.get("schema", {}).get("properties", {}) if name != PHOTO_FIELD)
    ok = spec.get("responses", {}).get("200", {})
    headers = tuple(name for name in ok.get("headers", {}) if name not in COMMON_HEADERS)
    return Operation(name=path.rstrip("/").rsplit("/", 1)[-1], method=method.upper(), path=path, params=params,
                     parts=parts, headers=headers, media_types=tuple(ok.get("content", {})))


def operations_from_document(document: dict[str, Any]) -> dict[str, Operation]:
    """Every route tagged ``images`` or ``account``, by the last segment of its path (``bokeh``, ``usage``)."""
    found = {}
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            if set(spec.get("tags", ())) & set(TAGS):
                operation = operation_from_document(path, method, spec)
                found[operation.name] = operation
    return found


def _call(name: str, args: list[str], indent: int) -> str:
    """``name(arg, arg, ...)`` on one line, or wrapped one argument a line when over ``LINE``."""
    one_line = f"{' ' * indent}{name}({', '.join(args)}),"
    if len(one_line) <= LINE:
        return one_line
    inner = " " * (indent + 4)
    return "\n".join([f"{' ' * indent}{name}(", *(f"{inner}{arg}," for arg in args), f"{' ' * indent}),"])


def _literal(value: Any) -> str:
    """A Python literal of a JSON value, strings in double quotes like the rest of the code."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _tuple(values: tuple[Any, ...]) -> str:
    return f"({', '.join(_literal(v) for v in values)}{',' if len(values) == 1 else ''})"


def _field(key: str, values: tuple[Any, ...], indent: int) -> str:
    """``key=(...),`` on one line, or one value a line when over ``LINE``."""
    one_line = f"{' ' * indent}{key}={_tuple(values)},"
    if len(one_line) <= LINE:
        return one_line
    inner = " " * (indent + 4)
    return "\n".join([f"{' ' * indent}{key}=(", *(f"{inner}{_literal(v)}," for v in values), f"{' ' * indent}),"])


def _render_param(param: Param) -> str:
    args = [_literal(param.name), _literal(param.type)]
    if param.default is not None:
        args.append(f"default={_literal(param.default)}")
    if param.enum:
        args.append(f"enum={_tuple(param.enum)}")
    for key in ("minimum", "maximum"):
        if getattr(param, key) is not None:
            args.append(f"{key}={_literal(getattr(param, key))}")
    if param.pattern:
        args.append(f"pattern={_literal(param.pattern)}")
    enum_arg = f"enum={_tuple(param.enum)}"
    if param.enum and len(enum_arg) + 17 > LINE:  # too long even alone on a line: one value a line
        lines = [_field("enum", param.enum, 16) if arg == enum_arg else f"{' ' * 16}{arg}," for arg in args]
        return "\n".join([f"{' ' * 12}Param(", *lines, f"{' ' * 12}),"])
    return _call("Param", args, 12)


def _render_operation(operation: Operation) -> str:
    params = "\n".join(_render_param(p) for p in operation.params)
    name, method, path = (_literal(v) for v in (operation.name, operation.method, operation.path))
    lines = [f"    {name}: Operation(",
             f"        {name}, {method}, {path},",
             "        params=(" + (f"\n{params}\n        )," if params else "),")]
    for key in ("parts", "headers", "media_types"):
        if getattr(operation, key):
            lines.append(_field(key, getattr(operation, key), 8))
    lines.append("    ),")
    return "\n".join(lines)


def render(document: dict[str, Any]) -> str:
    """The source of ``operations.py`` for ``document``."""
    operations = operations_from_document(document)
    body = "\n".join(_render_operation(op) for op in operations.values())
    return f"{HEADER}OPERATIONS: dict[str, Operation] = {{\n{body}\n}}\n"


def _load(source: str) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        import httpx

        response = httpx.get(source, timeout=30)
        response.raise_for_status()
        return response.json()
    return json.loads(Path(source).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imageserve_client.codegen", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the OpenAPI document: a file or an http(s) URL")
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    source = render(_load(args.source))
    if args.out is None:
        sys.stdout.write(source)
    else:
        args.out.write_text(source)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
