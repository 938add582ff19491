"""Command line: ``python -m converters {build,configs,trtexec} ...``.

``--depth-model`` (default ``$IMAGESERVE_DEPTH_MODEL``, else fastdepth) chooses the depth model's source:
``depth_anything`` exports Depth Anything V2 Small from the Hugging Face hub (network access and the hub
extra, converters/requirements-hub.txt) as the ``depth`` model, with its own input size in the configs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from converters.build import build_repository
from converters.catalog import DEPTH_MODEL_ENV, serving_catalog
from converters.errors import ConverterError
from converters.tensorrt import trtexec_commands
from converters.triton_config import TARGETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m converters", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="fetch, convert and write a complete model repository")
    configs = commands.add_parser("configs", help="write configs only (no downloads)")
    for sub in (build, configs):
        sub.add_argument("--target", choices=TARGETS, default="cpu")
        sub.add_argument("--out", type=Path, required=True, help="model repository directory")
    trt = commands.add_parser("trtexec", help="print the TensorRT engine build commands for a repository")
    trt.add_argument("--repository", type=Path, required=True)
    trt.add_argument("--cache", type=Path, required=True, help="engine cache dir for this GPU + TensorRT")
    for sub in (build, configs, trt):
        sub.add_argument("--depth-model", default=None,
                         help=f"source of the depth model: fastdepth or depth_anything (default ${DEPTH_MODEL_ENV}, "
                              "else fastdepth)")
    args = parser.parse_args(argv)
    try:
        if args.command == "trtexec":
            print("\n".join(trtexec_commands(serving_catalog(args.depth_model), args.repository, args.cache)))
            return 0
        rebuilt = build_repository(args.out, args.target, with_weights=args.command == "build",
                                   depth_model=args.depth_model)
    except ConverterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {args.target} repository ready" + (f"; converted {', '.join(rebuilt)}" if rebuilt else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
