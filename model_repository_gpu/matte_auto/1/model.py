"""Triton python-backend entry point; the model lives in triton_models.matte_choice."""

from triton_models.matte_choice import TritonPythonModel  # noqa: F401
