"""Triton python-backend models: thin adapters from Triton tensors to ``imaging``.

Each ``model_repository/<model>/1/model.py`` re-exports one class from here.
Only these modules import ``triton_python_backend_utils`` (available inside
Triton's python-backend stub).
"""
