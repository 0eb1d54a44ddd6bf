"""Loading users' models: factories, state_dict / TorchScript / torch.export checkpoints, input names."""

import numpy as np
import pytest
import torch

from helpers import USER_MODEL, tiny_config
from trtpipe.config import validate
from trtpipe.errors import TrtpipeError
from trtpipe.inputs import random_inputs
from trtpipe.models import build_model, checkpoint_kind, ordered_input_names, resolve_factory, run_model
from trtpipe.spec import ModelSpec


@pytest.fixture
def user_spec(monkeypatch):
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parents[1])  # factory paths are relative to the run dir
    return validate(tiny_config(user=USER_MODEL)).models["user"]


def test_factory_from_file_and_from_module(user_spec):
    assert resolve_factory("tests/data/user_models.py:features_and_category")().__class__.__name__ == "FeaturesAndCategory"
    assert resolve_factory("trtpipe.zoo:tiny_unet")().__class__.__name__ == "TinyUNet"
    with pytest.raises(TrtpipeError, match="has no callable 'nope'"):
        resolve_factory("trtpipe.zoo:nope")
    with pytest.raises(TrtpipeError, match="file missing.py not found"):
        resolve_factory("missing.py:build")


def test_state_dict_checkpoint_roundtrip_with_scalar_int_input(user_spec, tmp_path):
    torch.manual_seed(3)
    original = resolve_factory(user_spec.factory)()
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": original.state_dict()}, path)  # a training-loop wrapper is unwrapped
    model = build_model(ModelSpec.from_dict({**user_spec.to_dict(), "checkpoint": str(path)}), str(path))
    inputs = random_inputs(user_spec, 3, seed=0)
    assert inputs["category"].shape == (3,) and inputs["category"].dtype == np.int64
    names, outputs = run_model(model, user_spec, inputs)
    with torch.inference_mode():
        expected = original.eval()(torch.from_numpy(inputs["features"]), torch.from_numpy(inputs["category"]))
    assert names == ["output"] and np.allclose(outputs[0], expected.numpy())


def test_torchscript_and_torch_export_checkpoints_are_recognised(user_spec, tmp_path):
    model = resolve_factory(user_spec.factory)().eval()
    feats, cat = torch.randn(2, 6), torch.tensor([1, 4])
    ts = tmp_path / "model.ts"
    torch.jit.trace(model, (feats, cat)).save(str(ts))
    pt2 = tmp_path / "model.pt2"
    torch.export.save(torch.export.export(model, (feats, cat)), str(pt2))
    state = tmp_path / "model.pt"
    torch.save(model.state_dict(), state)
    assert (checkpoint_kind(ts), checkpoint_kind(pt2), checkpoint_kind(state)) == ("torchscript", "pt2", "state_dict")
    no_factory = ModelSpec.from_dict({**user_spec.to_dict(), "factory": None})
    for path in (ts, pt2):
        loaded = build_model(no_factory, str(path))
        _, out = run_model(loaded, no_factory, {"features": feats.numpy(), "category": cat.numpy()})
        assert np.allclose(out[0], model(feats, cat).detach().numpy(), atol=1e-6)
    with pytest.raises(TrtpipeError, match="holds a state_dict, which needs a factory"):
        build_model(no_factory, str(state))


def test_user_mistakes_are_one_sentence(user_spec, tmp_path):
    with pytest.raises(TrtpipeError, match=r"checkpoint .*nope.pt not found; fix: correct models.user.checkpoint"):
        build_model(user_spec, str(tmp_path / "nope.pt"))
    wrong = tmp_path / "wrong.pt"
    torch.save(resolve_factory("trtpipe.zoo:tiny_resnet")().state_dict(), wrong)
    with pytest.raises(TrtpipeError, match=r"does not fit the factory's model \(\d+ missing key"):
        build_model(user_spec, str(wrong))
    renamed = ModelSpec.from_dict({**user_spec.to_dict(), "inputs": [{**user_spec.inputs[0].to_dict(), "name": "feats"},
                                                                    user_spec.inputs[1].to_dict()]})
    with pytest.raises(TrtpipeError, match=r"input 'feats' is not an argument of forward\(features, category\)"):
        ordered_input_names(build_model(renamed, None), renamed)
    bad_shape = ModelSpec.from_dict({**user_spec.to_dict(), "inputs": [{**user_spec.inputs[0].to_dict(), "shape": [7]},
                                                                      user_spec.inputs[1].to_dict()]})
    with pytest.raises(TrtpipeError, match=r"forward\(\) failed on inputs \[features 2x7 float32, category 2 int64\].*fix: check models.user.inputs"):
        run_model(build_model(bad_shape, None), bad_shape, random_inputs(bad_shape, 2))


def test_a_seeded_checkpoint_exercises_every_layer(repo_cwd, tmp_path):
    """A zero-initialised head gets seeded values (the reference then depends on the input) and BatchNorm statistics
    are measured on seeded inputs (the factory's mean 0 / variance 1 let seeded MobileNetV3's logits shrink to 1e-9);
    both the same on every write."""
    from helpers import ZERO_HEAD_MODEL
    from trtpipe.models import write_seeded_checkpoint
    from trtpipe.reference import Reference, make_reference

    sweep = validate(tiny_config(zero=ZERO_HEAD_MODEL, resnet={"factory": "trtpipe.zoo:tiny_resnet",
                                                               "inputs": [{"name": "image", "shape": [3, 32, 32]}]}))
    zero, resnet = sweep.models["zero"], sweep.models["resnet"]
    write_seeded_checkpoint(zero, tmp_path / "zero.pt")
    assert torch.load(tmp_path / "zero.pt")["head.weight"].any()
    make_reference(zero, str(tmp_path / "zero.pt"), [1, 2, 3], tmp_path / "zero.npz")
    assert Reference(tmp_path / "zero.npz").input_independent == {}

    write_seeded_checkpoint(resnet, tmp_path / "a.pt")
    write_seeded_checkpoint(resnet, tmp_path / "b.pt")
    a, b, factory = torch.load(tmp_path / "a.pt"), torch.load(tmp_path / "b.pt"), build_model(resnet, None).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    variances = [k for k in a if k.endswith("running_var")]
    assert variances and not any(torch.equal(a[k], factory[k]) for k in variances)  # measured, not the factory's ones
    model = build_model(resnet, str(tmp_path / "a.pt"))
    assert not model.training and all(m.momentum == 0.1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
