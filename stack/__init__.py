"""The local stack: the real Triton server (from the nvidia-pytriton wheel) and the gateway."""
