"""A real trained model on real data for the default sweep and CI: zoo.DigitsCNN trained in seconds on scikit-learn's
handwritten digits (1,797 8x8 images, 10 classes), seeded. The images it never saw in training, with their labels,
become the model's samples, so the report judges fp32/fp16/int8 by task accuracy on real inputs.

    python -m trtpipe.digits data/digits      # writes checkpoint.pt and samples.npz (what config.yaml's digits uses)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

TRAIN = 1000  # the first 1,000 images (after a seeded shuffle) train; the other 797 are the samples
EPOCHS, BATCH, LR = 10, 50, 3e-3  # about 20 s on one core


def load_digits(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images N x 1 x 8 x 8 float32 in [0, 1], labels int64), shuffled with `seed`."""
    from sklearn.datasets import load_digits as sk_load

    data = sk_load()
    order = np.random.default_rng(seed).permutation(len(data.target))
    images = (data.images[order] / 16.0).astype(np.float32)[:, None]
    return images, data.target[order].astype(np.int64)


def train(seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """The trained model and what it scored on the held-out images."""
    import torch

    images, labels = load_digits(seed)
    x, y = torch.from_numpy(images[:TRAIN]), torch.from_numpy(labels[:TRAIN])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core: the same sums in the same order on every machine, and no fight for cores
    try:
        model = _fit(x, y, seed)
    finally:
        torch.set_num_threads(threads)
    with torch.inference_mode():
        predicted = model(torch.from_numpy(images[TRAIN:])).argmax(1).numpy()
    return model, {"train": TRAIN, "test": int(len(labels) - TRAIN), "test_accuracy": float(np.mean(predicted == labels[TRAIN:]))}


def _fit(x, y, seed: int):
    import torch

    from .zoo import DigitsCNN

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = DigitsCNN()
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(EPOCHS):
            for idx in torch.randperm(TRAIN, generator=gen).split(BATCH):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
    return model.eval()


def write(out_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """checkpoint.pt (the state_dict) and samples.npz (`image` and `labels` of the images not trained on)."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, scores = train(seed)
    images, labels = load_digits(seed)
    torch.save(model.state_dict(), out / "checkpoint.pt")
    np.savez_compressed(out / "samples.npz", image=images[TRAIN:], labels=labels[TRAIN:])
    return scores


if __name__ == "__main__":
    print(write(sys.argv[1] if len(sys.argv) > 1 else "data/digits"))
