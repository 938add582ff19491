"""Pure image operations used by the Triton python-backend steps (no Triton import)."""
