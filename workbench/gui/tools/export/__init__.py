"""Export: a run's network as a verified ONNX file (and weights, a script)."""
