"""Real English sentences for the int8 measurement of all-MiniLM-L6-v2 (docs/quantization/quant_table.py and
ort_int8_speed.py): written by people, found on every machine with scikit-learn and Python installed."""

from __future__ import annotations

import re
from pathlib import Path


def english_sentences(min_words: int = 6, limit: int = 256) -> list[str]:
    """Real English sentences, written by people: the dataset descriptions scikit-learn ships
    (sklearn/datasets/descr/*.rst) and the module docstrings of Python's standard library, in file order."""
    import ast
    import os

    import sklearn.datasets

    texts = [p.read_text() for p in sorted(Path(sklearn.datasets.__file__).parent.joinpath("descr").glob("*.rst"))]
    for p in sorted(Path(os.__file__).parent.glob("*.py")):
        try:
            texts.append(ast.get_docstring(ast.parse(p.read_text())) or "")
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
    text = " ".join(texts)
    text = re.sub(r"`[^`]*`_?|\.\. [^\n]*|[*=|:_-]{2,}|https?://\S+", " ", text)
    sentences = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", text)]
    def prose(s: str) -> bool:
        words = s.split()
        return (min_words <= len(words) <= 40 and s[0].isupper() and ":" not in s
                and sum(bool(re.fullmatch(r"[A-Za-z][a-z'-]*[,.;)]?", w)) for w in words) >= 0.8 * len(words))

    return [s for s in dict.fromkeys(sentences) if prose(s)][:limit]
