"""Run a MediaPipe TFLite model with MediaPipe's own runtime and save its raw output tensors.

Usage (from a separate interpreter that has mediapipe, see requirements-mediapipe.txt):

    .venv-mediapipe/bin/python converters/mediapipe_tensors.py --model face_landmark.tflite \\
        --images IN.npy --range 0 1 --outputs 2 --out OUT.npz

IN.npy holds uint8 RGB images, N x H x W x 3, already at the model's input size
(so that MediaPipe's resize is the identity). OUT.npz receives float32 arrays:
``input`` N x H x W x 3 (the tensor MediaPipe fed the model) and ``output_<i>``
N x K_i, output ``i`` of the model flattened in TFLite order, for each of the
``--outputs`` outputs. This script imports only mediapipe, numpy and the
standard library.

The graph is the front half of MediaPipe's own model graphs (checked with
mediapipe 0.10.14, e.g. the FaceDetection and FaceLandmarkCpu subgraphs):
ImageToTensorCalculator (the model's float range, ``--range``) ->
InferenceCalculatorCpu (TFLite with the XNNPACK delegate, ``model_path`` set to
``--model``) -> SplitTensorVectorCalculator -> one TensorsToFloatsCalculator per
output (no activation: logits stay logits). A second TensorsToFloatsCalculator
reads the input tensor itself, so a caller can check its own pre-processing
against MediaPipe's and feed another runtime the very same numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from mediapipe.calculators.core import split_vector_calculator_pb2
from mediapipe.calculators.tensor import image_to_tensor_calculator_pb2, inference_calculator_pb2
from mediapipe.framework import calculator_pb2
from mediapipe.python import packet_creator, packet_getter
from mediapipe.python._framework_bindings import calculator_graph, image_frame

INPUT_FLOATS = "input_floats"


def _output_stream(position: int) -> str:
    return f"output_floats_{position}"


def build_graph(model_path: Path, height: int, width: int, value_range: tuple[float, float],
                outputs: int) -> calculator_pb2.CalculatorGraphConfig:
    """Image -> MediaPipe's input tensor -> the TFLite model -> each output tensor as floats."""
    config = calculator_pb2.CalculatorGraphConfig()
    config.input_stream.append("image")
    to_tensor = config.node.add(calculator="ImageToTensorCalculator", input_stream=["IMAGE:image"],
                                output_stream=["TENSORS:input_tensors"])
    options = to_tensor.options.Extensions[image_to_tensor_calculator_pb2.ImageToTensorCalculatorOptions.ext]
    options.output_tensor_width, options.output_tensor_height = width, height
    options.output_tensor_float_range.min, options.output_tensor_float_range.max = value_range
    inference = config.node.add(calculator="InferenceCalculatorCpu", input_stream=["TENSORS:input_tensors"],
                                output_stream=["TENSORS:output_tensors"])
    inference_options = inference.options.Extensions[inference_calculator_pb2.InferenceCalculatorOptions.ext]
    inference_options.model_path = str(model_path.resolve())
    inference_options.delegate.xnnpack.SetInParent()
    config.node.add(calculator="TensorsToFloatsCalculator", input_stream=["TENSORS:input_tensors"],
                    output_stream=[f"FLOATS:{INPUT_FLOATS}"])
    split = config.node.add(calculator="SplitTensorVectorCalculator", input_stream=["output_tensors"],
                            output_stream=[f"output_tensor_{i}" for i in range(outputs)])
    split_options = split.options.Extensions[split_vector_calculator_pb2.SplitVectorCalculatorOptions.ext]
    for position in range(outputs):
        split_options.ranges.add(begin=position, end=position + 1)
        config.node.add(calculator="TensorsToFloatsCalculator", input_stream=[f"TENSORS:output_tensor_{position}"],
                        output_stream=[f"FLOATS:{_output_stream(position)}"])
    return config


def run_model(model_path: Path, images: np.ndarray, value_range: tuple[float, float],
              outputs: int) -> dict[str, np.ndarray]:
    """MediaPipe's input tensor and raw output tensors for each image (see the module docstring)."""
    _, height, width, _ = images.shape
    streams = [INPUT_FLOATS, *(_output_stream(i) for i in range(outputs))]
    received: dict[str, list[np.ndarray]] = {stream: [] for stream in streams}
    graph = calculator_graph.CalculatorGraph(graph_config=build_graph(model_path, height, width, value_range,
                                                                      outputs))
    for stream in streams:
        graph.observe_output_stream(
            stream, lambda name, packet: received[name].append(np.array(packet_getter.get_float_list(packet),
                                                                         np.float32)))
    graph.start_run()
    for timestamp, image in enumerate(images):
        frame = packet_creator.create_image_frame(image_format=image_frame.ImageFormat.SRGB,
                                                  data=np.ascontiguousarray(image))
        graph.add_packet_to_input_stream("image", frame.at(timestamp))
    graph.close()
    if any(len(arrays) != len(images) for arrays in received.values()):
        counts = {stream: len(arrays) for stream, arrays in received.items()}
        raise RuntimeError(f"MediaPipe returned {counts} packets for {len(images)} images")
    result = {"input": np.stack(received[INPUT_FLOATS]).reshape(images.shape)}
    for position in range(outputs):
        result[f"output_{position}"] = np.stack(received[_output_stream(position)])
    return result


def load_images(path: Path) -> np.ndarray:
    images = np.load(path)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise SystemExit(
            f"{path}: expected uint8 RGB images of shape N x H x W x 3 (N >= 1) at the model's input size, "
            f"got {images.dtype} {images.shape}"
        )
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the .tflite file")
    parser.add_argument("--images", type=Path, required=True, help=".npy of uint8 N x H x W x 3 RGB")
    parser.add_argument("--range", type=float, nargs=2, required=True, metavar=("MIN", "MAX"),
                        help="the model's input float range: 0 1 (x/255) or -1 1 ((x-127.5)/127.5)")
    parser.add_argument("--outputs", type=int, required=True, help="how many output tensors the model has")
    parser.add_argument("--out", type=Path, required=True, help=".npz to write")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        raise SystemExit(f"model file {args.model} does not exist")
    if args.outputs < 1:
        raise SystemExit(f"--outputs {args.outputs}: a model has at least one output")
    low, high = args.range
    if not low < high:
        raise SystemExit(f"--range {low} {high}: MIN must be below MAX")
    np.savez(args.out, **run_model(args.model, load_images(args.images), (low, high), args.outputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
