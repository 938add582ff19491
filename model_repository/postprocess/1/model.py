"""Triton python-backend entry point; the model lives in triton_models.postprocess."""

from triton_models.postprocess import TritonPythonModel  # noqa: F401
