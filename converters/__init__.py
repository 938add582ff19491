"""Model catalog, registry fetchers, ONNX conversions and Triton config generation."""
