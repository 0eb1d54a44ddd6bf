import copy
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

FAST_BENCHMARK = {"warmup_s": 0.01, "min_duration_s": 0.05, "min_iterations": 3, "input_sets": 2}

TEXT_MODEL = {
    "factory": "trtpipe.zoo:tiny_text",
    "factory_kwargs": {"vocab_size": 50, "dim": 16},
    "inputs": [
        {"name": "input_ids", "shape": [8], "dtype": "int64", "range": [0, 50], "dynamic": {1: {"min": 4, "max": 16, "name": "seq"}}},
        {"name": "attention_mask", "shape": [8], "dtype": "int64", "range": [0, 2], "dynamic": {1: {"min": 4, "max": 16, "name": "seq"}}},
    ],
}
SR_MODEL = {
    "factory": "trtpipe.zoo:tiny_sr",
    "factory_kwargs": {"features": 8},
    "inputs": [{"name": "low_res", "shape": [3, 8, 8], "dynamic": {2: {"min": 4, "max": 16, "name": "height"}, 3: {"min": 4, "max": 16, "name": "width"}}}],
}
USER_MODEL = {
    "factory": "tests/data/user_models.py:features_and_category",
    "inputs": [
        {"name": "features", "shape": [6]},
        {"name": "category", "shape": [], "dtype": "int64", "range": [0, 5]},
    ],
}


def tiny_config(**models) -> dict:
    """A sweep small enough to run end to end in a test: two batch sizes, two profiles."""
    return copy.deepcopy({
        "batch_sizes": [1, 2],
        "profiles": {"small": {"min": 1, "opt": 2, "max": 4}},
        "sweep": {"profiles": ["latency", "small"]},
        "benchmark": FAST_BENCHMARK,
        "models": models or {"tiny_text": TEXT_MODEL},
    })


@pytest.fixture
def text_spec():
    from trtpipe.config import validate

    return validate(tiny_config()).models["tiny_text"]
