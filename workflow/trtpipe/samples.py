"""A model's own samples (`models.NAME.samples`): real inputs for the PyTorch reference, every stage's parity and
the task metric, and, where no `calibration_data` is given, the int8/fp8 calibration set.

Three kinds, told apart by the path:
- an `.npz` with one array per input, named like it, samples on axis 0 (like `calibration_data`), and optionally
  an array of labels (`labels: NAME`);
- a folder of images (png/jpg/bmp/...), resized to the input's height and width, scaled, normalised with `mean`/`std`
  and laid out as the input is (`layout: NCHW` or `NHWC`); labels from subfolder names with `labels: folders`;
- a text file, one sample a line, tokenized with the model's own `tokenizer.json` (the `tokenizers` package): ids,
  attention mask and token types padded and truncated to the input's length, as the tokenizer pads.

Calibration and evaluation never share a sample: a seeded shuffle puts `calibration` samples aside for int8/fp8 and
evaluates on the rest; with `calibration_data`, samples identical to one in it are left out of the evaluation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import TrtpipeError
from .inputs import NUMPY_DTYPES
from .spec import ModelSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
TEXT_SUFFIXES = (".txt", ".text", ".lines")
TOKENIZER_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


# The labels' array in a calibration file trtpipe writes (beside one array per input): not an input name anyone uses
CALIBRATION_LABELS = "__labels__"


@dataclass
class SampleSet:
    inputs: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: str
    kind: str
    details: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.inputs.values())))

    def take(self, index: np.ndarray) -> "SampleSet":
        return SampleSet({k: v[index] for k, v in self.inputs.items()},
                         None if self.labels is None else self.labels[index], self.source, self.kind, self.details)


def kind_of(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        return "images"
    if p.suffix == ".npz":
        return "npz"
    if p.suffix in TEXT_SUFFIXES:
        return "text"
    return "unknown"


def load(spec: ModelSpec, cfg: dict[str, Any]) -> SampleSet:
    """The model's samples as input arrays in the inputs' dtypes; one sentence for anything that does not fit."""
    path = Path(cfg["path"])
    where = f"models.{spec.name}.samples.path"
    if not path.exists():
        raise TrtpipeError(f"model {spec.name}: samples {path} not found; fix: correct {where} (relative to where "
                           f"snakemake runs) or remove samples to judge accuracy on random inputs.")
    kind = kind_of(path)
    if kind == "npz":
        samples = _load_npz(spec, path, cfg)
    elif kind == "images":
        samples = _load_images(spec, path, cfg)
    elif kind == "text":
        samples = _load_text(spec, path, cfg)
    else:
        raise TrtpipeError(f"model {spec.name}: samples {path} is neither an .npz, a folder of images nor a text file "
                           f"({', '.join(TEXT_SUFFIXES)}); fix: give one of those in {where}.")
    if len(samples) == 0:
        raise TrtpipeError(f"model {spec.name}: samples {path} holds no sample; fix: add samples to it.")
    return samples


def _load_npz(spec: ModelSpec, path: Path, cfg: dict[str, Any]) -> SampleSet:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise TrtpipeError(f"model {spec.name}: samples {path} is not a readable .npz ({type(exc).__name__}); fix: "
                           f"save it with numpy.savez(path, **{{input_name: array}}).") from None
    label_key = cfg.get("labels")
    for inp in spec.inputs:
        if inp.name not in arrays:
            others = ", ".join(k for k in arrays if k != label_key) or "nothing"
            raise TrtpipeError(f"model {spec.name}: samples {path} has no array {inp.name!r} (it has {others}); fix: "
                               f"save one array per input, named like the input.")
    inputs = {inp.name: check_array(spec, inp, arrays[inp.name], str(path)) for inp in spec.inputs}
    counts = {k: len(v) for k, v in inputs.items()}
    if len(set(counts.values())) > 1:
        raise TrtpipeError(f"model {spec.name}: samples {path} has arrays with different sample counts on axis 0 "
                           f"({', '.join(f'{k} {n}' for k, n in counts.items())}); fix: stack the same samples in every array.")
    labels = None
    if label_key:
        if label_key not in arrays:
            raise TrtpipeError(f"model {spec.name}: samples {path} has no labels array {label_key!r} (it has "
                               f"{', '.join(arrays)}); fix: correct models.{spec.name}.samples.labels or add the array.")
        labels = arrays[label_key]
        if len(labels) != len(next(iter(inputs.values()))):
            raise TrtpipeError(f"model {spec.name}: samples {path} has {len(labels)} labels for "
                               f"{len(next(iter(inputs.values())))} samples; fix: give one label per sample.")
    return SampleSet(inputs, labels, str(path), "npz")


def check_array(spec: ModelSpec, inp, array: np.ndarray, source: str) -> np.ndarray:
    """A sample array of one input: rank, sizes (fixed axes equal, dynamic ones in range) and dtype kind checked."""
    shown = f"model {spec.name}: samples {source}: array {inp.name!r}"
    if array.ndim != len(inp.shape) + 1:
        raise TrtpipeError(f"{shown} has rank {array.ndim} (shape {list(array.shape)}) but the input takes samples of "
                           f"shape {list(inp.shape)} stacked on axis 0, rank {len(inp.shape) + 1}; fix: stack samples "
                           f"of that shape along axis 0.")
    dynamic = {d.axis: d for d in inp.dynamic}
    for axis in range(1, array.ndim):
        size = array.shape[axis]
        d = dynamic.get(axis)
        if d is None and size != inp.shape[axis - 1]:
            raise TrtpipeError(f"{shown} has samples of shape {list(array.shape[1:])} but the input's shape is "
                               f"{list(inp.shape)} (axis {axis} is not dynamic); fix: give samples of that shape.")
        if d is not None and not d.min <= size <= d.max:
            raise TrtpipeError(f"{shown} has size {size} on axis {axis} ({d.name}), outside its range {d.min}..{d.max}; "
                               f"fix: pad or cut the samples into that range.")
    want = np.dtype(NUMPY_DTYPES[inp.dtype])
    floating_in, floating_want = np.issubdtype(array.dtype, np.floating), np.issubdtype(want, np.floating)
    if floating_in != floating_want or (want == np.bool_) != (array.dtype == np.bool_):
        raise TrtpipeError(f"{shown} has dtype {array.dtype} but the input is {inp.dtype}; fix: save it as {inp.dtype} "
                           f"(token ids and masks as integers, images as floats).")
    return array.astype(want)


def _load_images(spec: ModelSpec, folder: Path, cfg: dict[str, Any]) -> SampleSet:
    from PIL import Image

    inp = _image_input(spec, cfg)
    layout = cfg.get("layout", "NCHW")
    if len(inp.shape) != 3:
        raise TrtpipeError(f"model {spec.name}: samples {folder} are images but input {inp.name!r} has shape "
                           f"{list(inp.shape)}, not [C, H, W] or [H, W, C]; fix: point samples at an .npz instead.")
    channels, height, width = (inp.shape if layout == "NCHW" else (inp.shape[2], inp.shape[0], inp.shape[1]))
    if channels not in (1, 3):
        raise TrtpipeError(f"model {spec.name}: input {inp.name!r} has {channels} channels in layout {layout}; images "
                           f"have 1 or 3; fix: set models.{spec.name}.samples.layout to the input's layout.")
    height, width = cfg.get("resize") or (height, width)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise TrtpipeError(f"model {spec.name}: samples folder {folder} has no image ({', '.join(IMAGE_SUFFIXES)}); "
                           f"fix: put the images there.")
    scale = float(cfg.get("scale", 255.0))
    mean = np.asarray(cfg.get("mean", [0.0] * channels), np.float32).reshape(channels, 1, 1)
    std = np.asarray(cfg.get("std", [1.0] * channels), np.float32).reshape(channels, 1, 1)
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("RGB" if channels == 3 else "L").resize((width, height), Image.BILINEAR)
                arr = np.asarray(im, np.float32)
        except Exception as exc:
            raise TrtpipeError(f"model {spec.name}: samples image {f} cannot be read ({type(exc).__name__}: "
                               f"{str(exc)[:120]}); fix: replace or remove the file.") from None
        chw = (arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)) / scale
        chw = (chw - mean) / std
        images.append(chw if layout == "NCHW" else chw.transpose(1, 2, 0))
    batch = np.stack(images).astype(NUMPY_DTYPES[inp.dtype])
    labels = None
    if cfg.get("labels") == "folders":
        classes = sorted({f.parent.relative_to(folder).as_posix() for f in files})
        labels = np.asarray([classes.index(f.parent.relative_to(folder).as_posix()) for f in files], np.int64)
    details = {"files": len(files), "resize": [height, width], "layout": layout, "scale": scale,
               "mean": mean.ravel().tolist(), "std": std.ravel().tolist()}
    return SampleSet({inp.name: check_array(spec, inp, batch, str(folder))}, labels, str(folder), "images", details)


def _image_input(spec: ModelSpec, cfg: dict[str, Any]):
    name = cfg.get("input")
    if name is None and len(spec.inputs) == 1:
        return spec.inputs[0]
    if name is None or name not in spec.input_names:
        raise TrtpipeError(f"model {spec.name}: samples are images, but which input they feed is unclear (inputs: "
                           f"{', '.join(spec.input_names)}); fix: set models.{spec.name}.samples.input to one of them.")
    if len(spec.inputs) > 1:
        raise TrtpipeError(f"model {spec.name}: samples are images, but the model takes {len(spec.inputs)} inputs; fix: "
                           f"give every input in an .npz instead.")
    return spec.inputs[0]


def _load_text(spec: ModelSpec, path: Path, cfg: dict[str, Any]) -> SampleSet:
    from tokenizers import Tokenizer

    tok_path = cfg.get("tokenizer")
    if not tok_path:
        raise TrtpipeError(f"model {spec.name}: samples {path} is text, which needs the model's tokenizer; fix: set "
                           f"models.{spec.name}.samples.tokenizer to its tokenizer.json.")
    if not Path(tok_path).exists():
        raise TrtpipeError(f"model {spec.name}: tokenizer {tok_path} not found; fix: correct "
                           f"models.{spec.name}.samples.tokenizer (the tokenizer.json beside the model's config.json).")
    try:
        tokenizer = Tokenizer.from_file(str(tok_path))
    except Exception as exc:
        raise TrtpipeError(f"model {spec.name}: tokenizer {tok_path} cannot be read ({type(exc).__name__}: "
                           f"{str(exc)[:120]}); fix: give the tokenizer.json that save_pretrained wrote.") from None
    unknown = [i.name for i in spec.inputs if i.name not in TOKENIZER_FIELDS]
    if unknown:
        raise TrtpipeError(f"model {spec.name}: samples {path} is text, but input {unknown[0]!r} is not something a "
                           f"tokenizer gives ({', '.join(TOKENIZER_FIELDS)}); fix: give the samples as an .npz instead.")
    lines = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    length = int(cfg.get("max_length") or spec.inputs[0].shape[0])
    padding = tokenizer.padding or {}
    pad_token = padding.get("pad_token") or ("[PAD]" if tokenizer.token_to_id("[PAD]") is not None else None)
    pad_id = padding.get("pad_id", tokenizer.token_to_id(pad_token) if pad_token else 0) or 0
    tokenizer.enable_padding(length=length, pad_id=pad_id, pad_token=pad_token or "[PAD]",
                             direction=padding.get("direction", "right"), pad_type_id=padding.get("pad_type_id", 0))
    tokenizer.enable_truncation(max_length=length)
    encodings = tokenizer.encode_batch(lines)
    inputs = {}
    for inp in spec.inputs:
        arr = np.asarray([getattr(e, TOKENIZER_FIELDS[inp.name]) for e in encodings], dtype=np.int64)
        inputs[inp.name] = check_array(spec, inp, arr.astype(NUMPY_DTYPES[inp.dtype]), str(path))
    lengths = [sum(e.attention_mask) for e in encodings]
    details = {"tokenizer": str(tok_path), "max_length": length, "lines": len(lines),
               "truncated": int(sum(len(e.overflowing) > 0 for e in encodings)),
               "tokens_mean": float(np.mean(lengths)) if lengths else 0.0}
    return SampleSet(inputs, None, str(path), "text", details)


def sample_digests(inputs: dict[str, np.ndarray]) -> list[str]:
    """One digest per sample (all inputs together), to tell identical samples apart from different ones."""
    names = sorted(inputs)
    out = []
    for i in range(len(inputs[names[0]])):
        h = hashlib.sha1()
        for n in names:
            h.update(np.ascontiguousarray(inputs[n][i]).tobytes())
        out.append(h.hexdigest())
    return out


def split(samples: SampleSet, calibration: int, seed: int, exclude: dict[str, np.ndarray] | None = None
          ) -> tuple[SampleSet | None, SampleSet, dict[str, Any]]:
    """(calibration set or None, evaluation set, what was done): a seeded shuffle puts `calibration` samples aside;
    samples identical to one in `exclude` (the user's calibration_data) are dropped from the evaluation."""
    order = np.random.default_rng([seed, 28]).permutation(len(samples))
    calib_index, eval_index = order[:calibration], order[calibration:]
    dropped = 0
    if exclude is not None:
        seen = set(sample_digests({k: v for k, v in exclude.items() if k in samples.inputs}))
        digests = sample_digests(samples.inputs)
        keep = np.asarray([digests[i] not in seen for i in eval_index], bool)
        dropped = int((~keep).sum())
        eval_index = eval_index[keep]
    info = {"total": len(samples), "calibration": int(len(calib_index)), "evaluation": int(len(eval_index)),
            "dropped_as_in_calibration_data": dropped, "seed": seed}
    calib = samples.take(np.sort(calib_index)) if len(calib_index) else None
    return calib, samples.take(np.sort(eval_index)), info


def describe(meta: dict[str, Any]) -> str:
    """'digits.npz: 1347 held-out samples (450 calibrate int8/fp8)' for the report and the rows."""
    s = meta["split"]
    held = f", {s['calibration']} for calibration" if s["calibration"] else ""
    dropped = f", {s['dropped_as_in_calibration_data']} left out as in calibration_data" if s.get("dropped_as_in_calibration_data") else ""
    return f"{Path(meta['source']).name}: {s['evaluation']} held-out of {s['total']}{held}{dropped}"


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
