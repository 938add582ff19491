"""Triton python-backend entry point; the model lives in triton_models.preprocess."""

from triton_models.preprocess import TritonPythonModel  # noqa: F401
