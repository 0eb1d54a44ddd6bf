"""The report's rendering primitives: a document of headings, paragraphs, lists, tables and figures written as
Markdown and as self-contained HTML, the number format, the one way an engine is named, and a figure saved
atomically. The bottom of the report: it imports nothing of the package but the column names, io and spec, so
`trtpipe compare` and `trtpipe.decide` use it without importing the report.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..io import atomic_path
from ..spec import Variant
from . import columns as C


@dataclass
class Doc:
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, frame: pd.DataFrame) -> None:
        self.blocks.append(("table", frame))

    def image(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", (path, alt)))

    def markdown(self, relative_to: Path) -> str:
        out = []
        for kind, value in self.blocks:
            if kind == "h":
                out.append("#" * value[0] + " " + value[1])
            elif kind == "p":
                out.append(value)
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in value))
            elif kind == "table":
                out.append(markdown_table(value))
            elif kind == "img":
                out.append(f"![{value[1]}]({value[0].relative_to(relative_to).as_posix()})")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        body = []
        for kind, value in self.blocks:
            if kind == "h":
                body.append(f"<h{value[0]}>{html.escape(value[1])}</h{value[0]}>")
            elif kind == "p":
                body.append(f"<p>{html.escape(value)}</p>")
            elif kind == "ul":
                body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in value) + "</ul>")
            elif kind == "table":
                body.append(value.to_html(index=False, border=0, classes="t", na_rep="", escape=True))
            elif kind == "img":
                data = base64.b64encode(value[0].read_bytes()).decode()
                body.append(f'<img alt="{html.escape(value[1])}" src="data:image/png;base64,{data}">')
        style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
                 "table.t{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}"
                 "table.t th,table.t td{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
                 "table.t th{background:#f3f3f3}img{max-width:100%}h2{border-bottom:1px solid #ddd}")
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def markdown_table(frame: pd.DataFrame) -> str:
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join("" if (isinstance(v, float) and math.isnan(v)) else str(v) for v in row) + " |")
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for people: empty when missing, thousands grouped from 1000 up, else `digits` significant digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _field(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, (dict, pd.Series)) else getattr(row, key)


def engine_label(row: Any, *, model: bool = False, batch: bool = False, deployable: bool = False) -> str:
    """How the report, compare and decide name an engine (a row of benchmarks.csv, a dict or a named tuple).

    By its key: 'onnxruntime dynamic fp32 latency', with the model in front and ' batch 4' behind on request.
    As something to deploy (deployable=True): 'onnxruntime fp32 static-b4 engine', or
    'onnxruntime fp32 dynamic 1/4/32 engine (profile dynamic)' with the profile's batch range."""
    backend, variant, precision, profile = (_field(row, k) for k in (C.BACKEND, C.VARIANT, C.PRECISION, C.PROFILE))
    if deployable:
        if not Variant.parse(str(variant)).is_dynamic:
            return f"{backend} {precision} {variant} engine"
        shape = "/".join(str(int(_field(row, k))) for k in (C.PROFILE_MIN, C.PROFILE_OPT, C.PROFILE_MAX))
        return f"{backend} {precision} {variant} {shape} engine (profile {profile})"
    label = f"{backend} {variant} {precision} {profile}"
    if model:
        label = f"{_field(row, C.MODEL)} {label}"
    if batch:
        label = f"{label} batch {_field(row, C.BATCH)}"
    return label


def save_figure(fig, path: Path) -> None:
    """A PNG written atomically, the figure closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
