"""Build a user's (or the zoo's) PyTorch model from a factory and a checkpoint, and call it by input name."""

from __future__ import annotations

import inspect
import logging
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import TrtpipeError
from .factories import resolve_factory  # noqa: F401 (also imported from here)
from .spec import ModelSpec

log = logging.getLogger(__name__)


def checkpoint_kind(path: str | Path) -> str:
    """'pt2' (torch.export), 'torchscript' or 'state_dict', by content rather than name where possible."""
    path = Path(path)
    if path.suffix == ".pt2":
        return "pt2"
    if path.suffix == ".safetensors":
        return "state_dict"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any("/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith("archive_format") for n in names) and any("/models/" in n for n in names):
            return "pt2"
    return "state_dict"


def call_factory(spec: ModelSpec) -> Any:
    """The factory called with factory_kwargs; keywords it does not take are one sentence naming factory_kwargs and
    the parameters it does take (a typo used to end in "unexpected failure (TypeError ...)")."""
    factory = resolve_factory(spec.factory)
    kwargs = spec.factory_kwargs
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or C callable without a signature: let the call say it
        signature = None
    accepted = (", ".join(str(p.replace(annotation=inspect.Parameter.empty)) for p in signature.parameters.values())
                if signature else "...")

    def refuse(exc: TypeError) -> TrtpipeError:
        return TrtpipeError(f"model {spec.name}: models.{spec.name}.factory_kwargs = {dict(sorted(kwargs.items()))} does not "
                            f"fit the factory {spec.factory}({accepted}): {exc}; fix: correct or remove that key in "
                            f"factory_kwargs.")

    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            raise refuse(exc) from None
    try:
        return factory(**kwargs)
    except TypeError as exc:  # a factory taking **kwargs that passes them on to a class
        if "keyword argument" in str(exc) and any(repr(k) in str(exc) for k in kwargs):
            raise refuse(exc) from None
        raise


def build_model(spec: ModelSpec, checkpoint: str | Path | None) -> torch.nn.Module:
    """The model in eval mode with the checkpoint's weights; one clear sentence on any mismatch."""
    if checkpoint is not None and not Path(checkpoint).exists():
        raise TrtpipeError(
            f"model {spec.name}: checkpoint {checkpoint} not found; fix: correct models.{spec.name}.checkpoint in the "
            f"config, or remove it to benchmark seeded random weights."
        )
    kind = checkpoint_kind(checkpoint) if checkpoint is not None else "state_dict"
    if kind == "torchscript":
        model = torch.jit.load(str(checkpoint), map_location="cpu")
    elif kind == "pt2":
        model = torch.export.load(str(checkpoint)).module()
    else:
        if not spec.factory:
            raise TrtpipeError(
                f"model {spec.name}: checkpoint {checkpoint} holds a state_dict, which needs a factory to build the "
                f"module; fix: add models.{spec.name}.factory."
            )
        factory = resolve_factory(spec.factory)
        # A factory may load its checkpoint itself, as its library does (trtpipe.hf: transformers' from_pretrained).
        loader = getattr(factory, "load_checkpoint", None) if checkpoint is not None else None
        with torch.random.fork_rng():  # without a checkpoint, the weights are the seeded ones, every time
            torch.manual_seed(spec.seed)
            model = loader(checkpoint, **spec.factory_kwargs) if loader else call_factory(spec)
        if not isinstance(model, torch.nn.Module):
            raise TrtpipeError(f"model {spec.name}: factory {spec.factory} returned {type(model).__name__}, not an nn.Module; fix: return the module.")
        if checkpoint is not None and loader is None:
            _load_state_dict(model, spec, checkpoint)
    if hasattr(model, "eval") and kind != "pt2":  # exported programs refuse train()/eval()
        model.eval()
    return model


CALIBRATION_BATCHES, CALIBRATION_BATCH = 4, 8  # seeded random inputs that set a seeded model's BatchNorm statistics


def write_seeded_checkpoint(spec: ModelSpec, out_path: str | Path) -> int:
    """Save seeded weights that exercise every layer; returns the parameter count.

    A factory's own initial weights can make parity checks prove nothing. torchvision's ViT-B/16 zero-initialises
    its head (the same logits for every image). An untrained network's BatchNorm statistics (mean 0, variance 1)
    let activations shrink or grow layer by layer: seeded MobileNetV3-Large gave logits of 1e-9 (zero in fp16),
    ResNet-50 logits up to 112 (docs/gpu/onnxruntime/README.md, fourth session). So weight matrices left all zero get
    seeded random values, and BatchNorm statistics are measured on seeded random inputs, as training measures them
    on data."""
    from .io import atomic_path

    model = build_model(spec, None)
    with torch.random.fork_rng():
        torch.manual_seed(spec.seed)
        woken = _wake_zero_weights(model)
    if woken:
        log.info("model %s: seeded random values for weights its factory left all zero: %s", spec.name, ", ".join(woken))
    calibrated = _calibrate_batch_norm(model, spec)
    if calibrated:
        log.info("model %s: statistics of %d BatchNorm layers measured on %d seeded random batches of %d", spec.name,
                 calibrated, CALIBRATION_BATCHES, CALIBRATION_BATCH)
    with atomic_path(out_path) as tmp:
        torch.save(model.state_dict(), tmp)
    return sum(p.numel() for p in model.parameters())


def _wake_zero_weights(model: torch.nn.Module) -> list[str]:
    """Weight matrices (2+ dims) that are all zero get N(0, 1/fan_in): a layer of them hides its input."""
    woken = []
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2 and param.is_floating_point() and not param.any():
                param.normal_(0.0, param[0].numel() ** -0.5)
                woken.append(name)
    return woken


def _calibrate_batch_norm(model: torch.nn.Module, spec: ModelSpec) -> int:
    """Running statistics of every BatchNorm layer averaged over seeded random batches; returns how many layers."""
    from .inputs import random_inputs

    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not layers:
        return 0
    if not spec.inputs:
        log.warning("model %s: no inputs given, so its BatchNorm statistics stay the factory's", spec.name)
        return 0
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches, not a decaying one
    model.train()
    try:
        for k in range(CALIBRATION_BATCHES):
            run_model(model, spec, random_inputs(spec, CALIBRATION_BATCH, "opt", spec.seed, stream=f"calibrate/{k}"))
    finally:
        model.eval()
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
    return len(layers)


def read_state_dict(spec: ModelSpec, checkpoint: str | Path) -> Any:
    """The tensors of a state_dict checkpoint: a torch.save file (read with weights_only=True: nothing in the file
    runs) or a .safetensors file. A file that is neither says so in one sentence, without torch's advice to
    unpickle it unsafely (useless for a damaged file, and unsafe for one from elsewhere)."""
    path = Path(checkpoint)
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise TrtpipeError(
                f"model {spec.name}: checkpoint {checkpoint} is a safetensors file, but the safetensors package is not "
                f"installed; fix: pip install safetensors (it is in envs/requirements.txt)."
            ) from exc
        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise TrtpipeError(
                f"model {spec.name}: checkpoint {checkpoint} is not a readable safetensors file ({path.stat().st_size} bytes; "
                f"{_plain_first_line(exc)}); fix: copy or download it again, or save it with "
                f"safetensors.torch.save_file(model.state_dict(), path)."
            ) from exc
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        text = _plain_first_line(exc, all_lines=True)
        unsafe = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if unsafe:
            raise TrtpipeError(
                f"model {spec.name}: checkpoint {checkpoint} holds a pickled {unsafe.group(1).rsplit('.', 1)[-1]} object, "
                f"not only tensors "
                f"(a whole model saved with torch.save(model)?), and trtpipe does not unpickle objects (that would run "
                f"code from the file); fix: save the weights with torch.save(model.state_dict(), path), or give a "
                f"TorchScript file, a torch.export .pt2 or a .safetensors file."
            ) from exc
        size = path.stat().st_size
        what = "it is empty" if size == 0 else (
            "its zip archive is damaged (cut short or altered)" if "zip archive" in text or "central directory" in text
            else "it is not a file torch.save wrote")
        raise TrtpipeError(
            f"model {spec.name}: checkpoint {checkpoint} is not a readable checkpoint ({size} bytes: {what}); fix: copy "
            f"or download it again, or re-save it with torch.save(model.state_dict(), path)."
        ) from exc


def _plain_first_line(exc: BaseException, all_lines: bool = False) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)) or type(exc).__name__
    return text if all_lines else f"{type(exc).__name__}: {text.splitlines()[0][:200]}"


def _load_state_dict(model: torch.nn.Module, spec: ModelSpec, checkpoint: str | Path) -> None:
    state = read_state_dict(spec, checkpoint)
    for key in ("state_dict", "model_state_dict", "model"):  # common training-loop wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise TrtpipeError(f"model {spec.name}: checkpoint {checkpoint} holds {type(state).__name__}, not a state_dict; fix: save model.state_dict().")
    result = model.load_state_dict(state, strict=False)
    result.missing_keys[:] = _untied(model, result.missing_keys)
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"{len(result.missing_keys)} missing key(s), e.g. {result.missing_keys[0]!r}")
        if result.unexpected_keys:
            parts.append(f"{len(result.unexpected_keys)} unexpected key(s), e.g. {result.unexpected_keys[0]!r}")
        raise TrtpipeError(
            f"model {spec.name}: checkpoint {checkpoint} does not fit the factory's model ({'; '.join(parts)}); "
            f"{key_mismatch_cause(result.missing_keys, result.unexpected_keys, spec.name)}."
        )


def key_mismatch_cause(missing: list[str], unexpected: list[str], model: str) -> str:
    """What the keys show, and its fix: a prefix one side has (DataParallel's 'module.'), keys that are only partly
    there, or another architecture (the keys name other layers)."""
    for extra, lacking, verb in ((unexpected, missing, "strip"), (missing, unexpected, "add")):
        prefix = extra[0].split(".", 1)[0] + "." if extra and "." in extra[0] else None
        if prefix and lacking and all(k.startswith(prefix) for k in extra) and {k[len(prefix):] for k in extra} == set(lacking):
            where = " (left by DataParallel or DistributedDataParallel)" if prefix == "module." and verb == "strip" else ""
            how = ("{k.removeprefix(%r): v for k, v in state.items()}" % prefix if verb == "strip" else
                   "{%r + k: v for k, v in state.items()}" % prefix)
            return (f"the keys are the model's with a prefix {prefix!r} {'the checkpoint has' if verb == 'strip' else 'the model has'}"
                    f"{where}; fix: {verb} it and re-save: torch.save({how}, path)")
    if missing and unexpected:
        return (f"the keys name other layers: a checkpoint of another architecture, or of other factory settings; fix: use "
                f"the factory (and models.{model}.factory_kwargs) the checkpoint was saved from, or the checkpoint of this model")
    if missing:
        return (f"the checkpoint holds only part of the model (a backbone without its head, say); fix: give the full "
                f"model's state_dict, or a factory that builds only the part it holds")
    return (f"the checkpoint has layers the model lacks (other factory settings, or a larger variant); fix: check "
            f"models.{model}.factory and factory_kwargs")


def _untied(model: torch.nn.Module, missing: list[str]) -> list[str]:
    """Missing keys that are not tied to a loaded one: safetensors files (and save_pretrained) store a tied
    weight, such as a decoder sharing the embedding matrix, once."""
    tensors = model.state_dict(keep_vars=True)
    loaded = {id(t) for k, t in tensors.items() if k not in missing}
    return [k for k in missing if id(tensors[k]) not in loaded]


def forward_arg_names(model: torch.nn.Module) -> list[str] | None:
    """Names of forward()'s tensor arguments, or None where they cannot be known (*args)."""
    if isinstance(model, torch.jit.ScriptModule):
        return [a.name for a in model.forward.schema.arguments[1:]]
    params = inspect.signature(model.forward).parameters.values()
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    return [p.name for p in params]


def ordered_input_names(model: torch.nn.Module, spec: ModelSpec) -> list[str]:
    """The config's inputs in forward()'s order; a name forward() does not take is an error."""
    names = forward_arg_names(model)
    configured = spec.input_names
    if names is None:
        return configured
    unknown = [n for n in configured if n not in names]
    if unknown:
        raise TrtpipeError(
            f"model {spec.name}: input {unknown[0]!r} is not an argument of forward({', '.join(names)}); "
            f"fix: rename models.{spec.name}.inputs to forward()'s argument names."
        )
    leading = names[: len(configured)]
    if set(leading) != set(configured):
        raise TrtpipeError(
            f"model {spec.name}: the inputs {configured} must be the leading arguments of forward({', '.join(names)}); "
            f"fix: configure the arguments {leading}."
        )
    return leading


def run_model(model: torch.nn.Module, spec: ModelSpec, inputs: dict[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """Run PyTorch on numpy inputs; returns (output names, outputs)."""
    order = ordered_input_names(model, spec)
    args = tuple(torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in order)
    try:
        with torch.inference_mode():
            result = model(*args)
    except Exception as exc:
        shapes = ", ".join(f"{n} {'x'.join(map(str, inputs[n].shape))} {inputs[n].dtype}" for n in order)
        raise TrtpipeError(
            f"model {spec.name}: forward() failed on inputs [{shapes}] ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300]}); fix: check models.{spec.name}.inputs shape and dtype."
        ) from exc
    names, tensors = flatten_outputs(result, spec)
    return names, [t.detach().cpu().numpy() for t in tensors]


def flatten_outputs(result: Any, spec: ModelSpec) -> tuple[list[str], list[torch.Tensor]]:
    if isinstance(result, torch.Tensor):
        names, tensors = ["output"], [result]
    elif isinstance(result, dict):
        names, tensors = [str(k) for k in result], list(result.values())
    elif isinstance(result, (tuple, list)):
        names, tensors = [f"output_{i}" for i in range(len(result))], list(result)
    else:
        raise TrtpipeError(f"model {spec.name}: forward() returned {type(result).__name__}; fix: return a tensor, a tuple or a dict of tensors.")
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        raise TrtpipeError(f"model {spec.name}: forward() returned a non-tensor output; fix: return tensors only (nested outputs are not supported).")
    if spec.outputs:
        if len(spec.outputs) != len(tensors):
            raise TrtpipeError(
                f"model {spec.name}: outputs lists {len(spec.outputs)} name(s) but forward() returns {len(tensors)} tensor(s); "
                f"fix: list one name per output."
            )
        names = list(spec.outputs)
    return names, tensors
