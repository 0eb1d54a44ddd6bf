"""Inference backends: the registry (registry.py) says what each is; one module implements each (base.py holds
what they share). The stages' own ONNX evaluator is trtpipe/ort_session.py, not a backend. Nothing outside this
package imports a backend library directly, that evaluator's onnxruntime aside."""
