import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

@pytest.fixture
def text_spec():
    from helpers import tiny_config
    from trtpipe.config import validate

    return validate(tiny_config()).models["tiny_text"]


@pytest.fixture(scope="module")
def repo_cwd():
    """User factory paths (tests/data/...) are relative to where snakemake runs: the repository, for one module
    (MonkeyPatch undoes it, so no later test inherits the working directory)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(Path(__file__).resolve().parents[1])
        yield
