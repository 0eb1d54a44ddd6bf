"""trtpipe: PyTorch checkpoints to benchmarked inference engines.

Importing the package is cheap on purpose: the Snakefile imports it to validate the config and
build the DAG, so heavy libraries (torch, onnx, onnxruntime) are imported only inside the stages.
"""

__version__ = "0.1.0"
