"""Models a user might bring, loaded by the pipeline through `tests/data/user_models.py:NAME`."""

import torch
from torch import nn


class FeaturesAndCategory(nn.Module):
    """Two inputs of different kinds: a float feature vector and an int64 scalar per sample."""

    def __init__(self, features: int = 6, categories: int = 5, classes: int = 3):
        super().__init__()
        self.embed = nn.Embedding(categories, features)
        self.mlp = nn.Sequential(nn.Linear(features, 16), nn.ReLU(), nn.Linear(16, classes))

    def forward(self, features: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        return self.mlp(features + self.embed(category))


class HardcodedBatch(nn.Module):
    """The seeds' trap: looks dynamic, but view(2, -1) freezes the batch at the traced size."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.view(2, -1))


class Unexportable(nn.Module):
    """Uses an operator that no ONNX exporter converts (linalg.svd)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svd(x)[1]


class TinyConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def features_and_category(**kwargs):
    return FeaturesAndCategory(**kwargs)


def hardcoded_batch():
    return HardcodedBatch()


def unexportable():
    return Unexportable()


def tiny_conv():
    return TinyConv()


class TracedBatch(nn.Module):
    """Runs at any batch in PyTorch, but int(x.shape[0]) is frozen to the traced batch on export."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.reshape(int(x.shape[0]), -1))


class PerSampleLoop(nn.Module):
    """Runs at any batch in PyTorch, but a Python loop over the batch is unrolled: torch.compile fixes the batch."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.fc(x[i].flatten()) for i in range(x.shape[0])])


def per_sample_loop():
    return PerSampleLoop()


def traced_batch():
    return TracedBatch()


class NaNOutput(nn.Module):
    """Broken beyond export: PyTorch itself returns NaN everywhere."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * float("nan")


class ConstantBatch(nn.Module):
    """A tensor of constant shape made in forward(): batch 1 broadcasts to batch 2, batch 3 fails."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + torch.ones(2, 3)


class DataDependent(nn.Module):
    """Python control flow on a tensor's value: no exporter can keep both branches."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        if y.sum() > 0:
            return y * 2
        return y


def nan_output():
    return NaNOutput()


def constant_batch():
    return ConstantBatch()


def data_dependent():
    return DataDependent()


class TinyLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class PairsOfTwo(nn.Module):
    """A reshape to constants holding 2, a feature size (like swin_t's windows), not the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, 2, 4).sum(1)


class ConstantTable(nn.Module):
    """An output with no batch axis: the same [2, 3] table at every batch."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table * 1.0 + 0.0 * x.sum()


def tiny_linear():
    return TinyLinear()


def pairs_of_two():
    return PairsOfTwo()


def constant_table():
    return ConstantTable()


class ZeroHead(nn.Module):
    """A classifier whose head is zero-initialised (as torchvision's ViT): seeded, it gives the same logits for every
    input. Also returns its features (which do vary) and the predicted class (an integer output)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, 4)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor):
        features = self.body(x)
        logits = self.head(features)
        return features, logits, logits.argmax(-1)


def zero_head():
    return ZeroHead()


class Elementwise(nn.Module):
    """No Conv, MatMul or Gemm: nothing onnxruntime.quantization's int8 could quantize."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) * 2.0 + x


def elementwise():
    return Elementwise()
