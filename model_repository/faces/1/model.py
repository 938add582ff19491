"""Triton python-backend entry point; the model lives in triton_models.faces_step."""

from triton_models.faces_step import TritonPythonModel  # noqa: F401
