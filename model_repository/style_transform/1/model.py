"""Triton python-backend entry point; the model lives in triton_models.onnx_step."""

from triton_models.onnx_step import TritonPythonModel  # noqa: F401
