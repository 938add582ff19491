"""Triton python-backend entry point; the model lives in triton_models.upscale_step."""

from triton_models.upscale_step import TritonPythonModel  # noqa: F401
