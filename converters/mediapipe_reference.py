"""Run MediaPipe's own runtime on a selfie segmentation model and save its raw output.

Usage (from a separate interpreter that has mediapipe, see requirements-mediapipe.txt):

    .venv-mediapipe/bin/python converters/mediapipe_reference.py \\
        --model selfie_segmentation.tflite --images IN.npy --out OUT.npy

IN.npy holds uint8 RGB images, N x 256 x 256 x 3; OUT.npy receives float32
N x 256 x 256: the model's sigmoid person probability exactly as MediaPipe
computes it. This script imports only mediapipe, numpy and the standard library.

How the raw model output is obtained, and why it is raw (checked with
mediapipe 0.10.14):

* The graph is the one behind ``mp.solutions.selfie_segmentation``
  (``selfie_segmentation_cpu.binarypb``, model_selection=0). Decoded, it is
  ImageToTensorCalculator (256x256, keep_aspect_ratio false, float range
  [0, 1]) -> InferenceCalculator (TFLite with the XNNPACK delegate and
  MediaPipe's custom-op resolver, which provides Convolution2DTransposeBias)
  -> TensorsToSegmentationCalculator (activation NONE, the model already ends
  in a sigmoid; resizes the mask to the input image size) -> FromImageCalculator.
  There is no smoothing, thresholding or temporal calculator. With 256x256
  inputs both resizes are identities, so the mask is the model's output tensor.
* That graph always loads the model copy inside the mediapipe wheel (node
  SelfieSegmentationModelLoader). The wheel's copy has the same weights and ops
  as the npm one but different bytes (it carries TFLITE_METADATA), so to test
  the very file given with --model this script makes one edit: it drops the
  loader node and sets ``InferenceCalculatorOptions.model_path``. Everything
  else (pre-processing, delegate, post-processing) is MediaPipe's own graph.
* Cross-checks done while writing this: on the same photos, the unmodified
  solution, this edited graph and the Tasks ``ImageSegmenter`` (confidence mask,
  with the wheel's model) agree bit for bit; running an image twice, or the
  images in another order, gives identical masks (no state between frames).
  The Tasks API is not used here because it crashes (SIGSEGV) on the npm model,
  which has no metadata.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from mediapipe.calculators.tensor import image_to_tensor_calculator_pb2, inference_calculator_pb2
from mediapipe.framework import calculator_pb2
from mediapipe.framework.tool import switch_container_pb2
from mediapipe.python import solution_base
from mediapipe.python.solutions import selfie_segmentation

GRAPH_PATH = "mediapipe/modules/selfie_segmentation/selfie_segmentation_cpu.binarypb"
GENERAL_MODEL = 0  # model_selection 0: the square 256x256 "general" model
MODEL_LOADER = "SelfieSegmentationModelLoader"
INFERENCE = "InferenceCalculator"
IMAGE_SIZE = 256


def _mediapipe_root() -> Path:
    # selfie_segmentation.py lives in <root>/mediapipe/python/solutions/.
    return Path(selfie_segmentation.__file__).resolve().parents[3]


def graph_for_model(model_path: Path) -> calculator_pb2.CalculatorGraphConfig:
    """MediaPipe's selfie segmentation CPU graph, reading the model from ``model_path``."""
    config = calculator_pb2.CalculatorGraphConfig()
    config.ParseFromString((_mediapipe_root() / GRAPH_PATH).read_bytes())
    loaders = [node for node in config.node if node.calculator == MODEL_LOADER]
    inference = [node for node in config.node if node.calculator == INFERENCE]
    if len(loaders) != 1 or len(inference) != 1:
        raise RuntimeError(
            f"unexpected graph in {GRAPH_PATH}: expected one {MODEL_LOADER} and one {INFERENCE} node; "
            "this script was written for mediapipe==0.10.14, install the pinned version"
        )
    config.node.remove(loaders[0])
    node = inference[0]
    side_packets = [packet for packet in node.input_side_packet if not packet.startswith("MODEL:")]
    del node.input_side_packet[:]
    node.input_side_packet.extend(side_packets)
    node.options.Extensions[inference_calculator_pb2.InferenceCalculatorOptions.ext].model_path = str(
        model_path.resolve()
    )
    _check_tensor_size(config)
    return config


def _check_tensor_size(config: calculator_pb2.CalculatorGraphConfig) -> None:
    """The general model's ImageToTensor must be 256x256, so that 256x256 images are not resampled."""
    switch = next(node for node in config.node if node.calculator == "SwitchContainer")
    options = switch.options.Extensions[switch_container_pb2.SwitchContainerOptions.ext]
    to_tensor = options.contained_node[GENERAL_MODEL].options.Extensions[
        image_to_tensor_calculator_pb2.ImageToTensorCalculatorOptions.ext
    ]
    size = (to_tensor.output_tensor_height, to_tensor.output_tensor_width)
    if size != (IMAGE_SIZE, IMAGE_SIZE):
        raise RuntimeError(f"graph resizes to {size}, expected {(IMAGE_SIZE, IMAGE_SIZE)}")


def load_images(path: Path) -> np.ndarray:
    images = np.load(path)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise SystemExit(
            f"{path}: expected uint8 RGB images of shape N x {IMAGE_SIZE} x {IMAGE_SIZE} x 3, got "
            f"{images.dtype} {images.shape}; resize them to {IMAGE_SIZE}x{IMAGE_SIZE} first so that "
            "MediaPipe's own resizing is the identity"
        )
    return images


def run_reference(model_path: Path, images: np.ndarray) -> np.ndarray:
    """Raw model output for each image, float32 N x 256 x 256."""
    graph = solution_base.SolutionBase(
        graph_config=graph_for_model(model_path),
        side_inputs={"model_selection": GENERAL_MODEL},
        outputs=["segmentation_mask"],
    )
    try:
        masks = [
            np.array(graph.process({"image": np.ascontiguousarray(image)}).segmentation_mask, np.float32)
            for image in images
        ]
    finally:
        graph.close()
    return np.stack(masks) if masks else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="selfie_segmentation.tflite (256x256)")
    parser.add_argument("--images", type=Path, required=True, help=".npy of uint8 N x 256 x 256 x 3 RGB")
    parser.add_argument("--out", type=Path, required=True, help=".npy to write float32 N x 256 x 256")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        raise SystemExit(f"model file {args.model} does not exist")
    masks = run_reference(args.model, load_images(args.images))
    np.save(args.out, masks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
