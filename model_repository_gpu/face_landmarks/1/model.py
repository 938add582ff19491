"""Triton python-backend entry point; the model lives in triton_models.style_step."""

from triton_models.style_step import TritonPythonModel  # noqa: F401
