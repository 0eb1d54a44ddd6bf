"""Inference backends: the registry (registry.py) says what each is; one module implements each (base.py holds
what they share). ort_session.py is not a backend: it runs ONNX files on the CPU for every stage's parity check.
Nothing outside this package imports a backend library (onnxruntime, tensorrt) directly."""
