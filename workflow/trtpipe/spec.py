"""What a model looks like from outside (its inputs) and which shapes an engine accepts (its profile).

These small value objects travel between the Snakefile and the stage CLIs as sorted JSON, so that
Snakemake's params tracking sees exactly the slice of the config each job depends on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import ProfileError

BATCH_DIM = "batch"
INTEGER_DTYPES = ("int64", "int32")


@dataclass(frozen=True)
class DynamicAxis:
    axis: int  # axis of the full tensor; 0 is the batch, so this is >= 1
    min: int
    max: int
    name: str


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]  # one sample, without the batch axis; dynamic axes hold their opt size
    dtype: str = "float32"
    range: tuple[float, float] | None = None
    dynamic: tuple[DynamicAxis, ...] = ()

    def dim(self, axis: int, which: str) -> int:
        """Size of non-batch `axis` at `which` in {min, opt, max}."""
        for d in self.dynamic:
            if d.axis == axis and which != "opt":
                return d.min if which == "min" else d.max
        return self.shape[axis - 1]

    def full_shape(self, batch: int, dims: str = "opt") -> tuple[int, ...]:
        return (batch, *(self.dim(axis, dims) for axis in range(1, len(self.shape) + 1)))

    def dim_names(self) -> dict[int, str]:
        """Symbolic names of the dynamic axes of the full tensor (batch included)."""
        return {0: BATCH_DIM, **{d.axis: d.name for d in self.dynamic}}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}
        if self.range is not None:
            out["range"] = list(self.range)
        if self.dynamic:
            out["dynamic"] = {str(d.axis): {"min": d.min, "max": d.max, "name": d.name} for d in self.dynamic}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InputSpec":
        dynamic = tuple(
            DynamicAxis(int(axis), int(d["min"]), int(d["max"]), d.get("name") or f"{data['name']}_dim{axis}")
            for axis, d in sorted(data.get("dynamic", {}).items(), key=lambda kv: int(kv[0]))
        )
        rng = data.get("range")
        return cls(
            name=data["name"],
            shape=tuple(int(s) for s in data["shape"]),
            dtype=data.get("dtype", "float32"),
            range=(float(rng[0]), float(rng[1])) if rng is not None else None,
            dynamic=dynamic,
        )


@dataclass(frozen=True)
class ModelSpec:
    name: str
    inputs: tuple[InputSpec, ...]
    factory: str | None = None
    factory_kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # None: a seeded checkpoint is generated from the factory
    outputs: tuple[str, ...] = ()
    seed: int = 0

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def has_dynamic_dims(self) -> bool:
        return any(i.dynamic for i in self.inputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "factory": self.factory,
            "factory_kwargs": self.factory_kwargs,
            "checkpoint": self.checkpoint,
            "inputs": [i.to_dict() for i in self.inputs],
            "outputs": list(self.outputs),
            "seed": self.seed,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelSpec":
        return cls(
            name=data["name"],
            inputs=tuple(InputSpec.from_dict(i) for i in data["inputs"]),
            factory=data.get("factory"),
            factory_kwargs=dict(data.get("factory_kwargs") or {}),
            checkpoint=data.get("checkpoint"),
            outputs=tuple(data.get("outputs") or ()),
            seed=int(data.get("seed", 0)),
        )

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        return cls.from_dict(json.loads(text))


Shape = tuple[int, ...]


@dataclass(frozen=True)
class Variant:
    """Which ONNX export an artifact comes from: static at one batch (`static-b4`), or dynamic (`dynamic`)."""

    batch: int | None  # None: the dynamic export

    PATTERN = r"static-b[0-9]+|dynamic"  # the wildcard's form, for Snakemake

    @classmethod
    def parse(cls, text: str) -> "Variant":
        if text == "dynamic":
            return cls(None)
        if text.startswith("static-b") and text[len("static-b"):].isdigit():
            return cls(int(text[len("static-b"):]))
        raise ValueError(f"{text!r} is not a variant; use static-bN or dynamic")

    @classmethod
    def static(cls, batch: int) -> "Variant":
        return cls(batch)

    @property
    def is_dynamic(self) -> bool:
        return self.batch is None

    @property
    def name(self) -> str:
        return "dynamic" if self.batch is None else f"static-b{self.batch}"

    def __str__(self) -> str:
        return self.name


DYNAMIC = Variant(None)


@dataclass(frozen=True)
class Profile:
    """An optimization profile: batch min/opt/max; non-batch dynamic axes take the model's ranges.

    `shapes(model)` turns it into trtexec-style min/opt/max shapes per input, which is what every
    backend consumes.
    """

    name: str
    min: int
    opt: int
    max: int

    @classmethod
    def static(cls, batch: int) -> "Profile":
        return cls("static", batch, batch, batch)

    @property
    def is_static(self) -> bool:
        return self.min == self.max

    def contains_batch(self, batch: int) -> bool:
        return self.min <= batch <= self.max

    def shapes(self, model: ModelSpec, variant: Variant = DYNAMIC) -> dict[str, tuple[Shape, Shape, Shape]]:
        """min/opt/max full shape per input; a static variant pins the non-batch axes at opt too."""
        out = {}
        for inp in model.inputs:
            lo, hi = ("min", "max") if variant.is_dynamic else ("opt", "opt")
            out[inp.name] = (
                inp.full_shape(self.min, lo),
                inp.full_shape(self.opt, "opt"),
                inp.full_shape(self.max, hi),
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "min": self.min, "opt": self.opt, "max": self.max}

    def sidecar_entry(self, model: ModelSpec, variant: Variant) -> dict[str, Any]:
        """The profile as an engine's sidecar records it: the batch range and every input's min/opt/max shape."""
        return {**self.to_dict(), "shapes": {n: [list(s) for s in t] for n, t in self.shapes(model, variant).items()}}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Profile":
        return cls(data["name"], int(data["min"]), int(data["opt"]), int(data["max"]))


def check_shapes_in_profile(
    shapes: dict[str, Shape], ranges: dict[str, tuple[Shape, Shape, Shape]], engine: str, profile: str
) -> None:
    """Refuse shapes outside the profile, as TensorRT's set_input_shape does, naming the range."""
    unknown = sorted(set(shapes) - set(ranges))
    if unknown:
        raise ProfileError(
            f"{engine}: input {unknown[0]!r} is not an input of this engine (inputs: {', '.join(sorted(ranges))}); "
            f"fix: feed only the engine's inputs."
        )
    missing = sorted(set(ranges) - set(shapes))
    if missing:
        raise ProfileError(f"{engine}: no shape given for input {missing[0]!r}; fix: set every input's shape.")
    for name, shape in shapes.items():
        lo, _, hi = ranges[name]
        bad = len(shape) != len(lo) or any(not (a <= s <= b) for s, a, b in zip(shape, lo, hi))
        if bad:
            raise ProfileError(
                f"{engine}: shape {_fmt(shape)} of input {name!r} is outside profile {profile!r} "
                f"(min {_fmt(lo)}, max {_fmt(hi)}); fix: pick a batch/shape inside the profile or build an engine "
                f"with a profile that covers it."
            )


def _fmt(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)
