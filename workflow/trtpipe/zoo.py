"""The project's own small model zoo: real architectures of different kinds, small enough for CI.

Each function is a factory (`trtpipe.zoo:NAME` in config.yaml) returning an nn.Module; weights come
from a seeded checkpoint the pipeline writes. They are written to export cleanly with dynamic shapes:
no hard-coded batch, sizes taken from tensors, not from Python constants.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _Residual(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out))
            if stride != 1 or channels_in != channels_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class TinyResNet(nn.Module):
    """Image classifier: a ResNet with three stages of basic blocks, global pooling and a linear head."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.stages = nn.Sequential(
            _Residual(width, width, 1),
            _Residual(width, 2 * width, 2),
            _Residual(2 * width, 4 * width, 2),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(image))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class TinySR(nn.Module):
    """Super-resolution (ESPCN-style sub-pixel convolution) with a bilinear skip; any height/width."""

    def __init__(self, scale: int = 2, features: int = 32):
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(3, features, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(features, features // 2, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(features // 2, 3 * scale * scale, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, low_res: torch.Tensor) -> torch.Tensor:
        skip = F.interpolate(low_res, scale_factor=float(self.scale), mode="bilinear", align_corners=False)
        return skip + self.shuffle(self.body(low_res))


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
    )


class TinyUNet(nn.Module):
    """Semantic segmentation: a two-level U-Net with skip connections, per-pixel class logits."""

    def __init__(self, num_classes: int = 5, width: int = 16):
        super().__init__()
        self.enc1 = _conv_block(3, width)
        self.enc2 = _conv_block(width, 2 * width)
        self.bottleneck = _conv_block(2 * width, 4 * width)
        self.up2 = nn.ConvTranspose2d(4 * width, 2 * width, 2, stride=2)
        self.dec2 = _conv_block(4 * width, 2 * width)
        self.up1 = nn.ConvTranspose2d(2 * width, width, 2, stride=2)
        self.dec1 = _conv_block(2 * width, width)
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(image)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        b = self.bottleneck(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.classifier(d1)


class TinyTextClassifier(nn.Module):
    """Two-input text classifier (token ids + attention mask, both int64) with one transformer block.

    The sequence length is dynamic; attention is written with matmuls so it exports the same way
    under both ONNX exporters.
    """

    def __init__(self, vocab_size: int = 1000, dim: int = 32, heads: int = 2, max_len: int = 128, num_classes: int = 4):
        super().__init__()
        self.heads = heads
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm2 = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch, seq = input_ids.shape
        positions = torch.arange(seq, device=input_ids.device).unsqueeze(0)
        x = self.tokens(input_ids) + self.positions(positions)
        mask = attention_mask.to(x.dtype)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        split = lambda t: t.reshape(batch, seq, self.heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(q), split(k), split(v)
        scores = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
        scores = scores + (1.0 - mask)[:, None, None, :] * -1e4  # additive mask: no NaN if a row is all padding
        attended = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, seq, -1)
        x = self.norm1(x + self.proj(attended))
        x = self.norm2(x + self.ffn(x))
        pooled = (x * mask.unsqueeze(-1)).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
        return self.head(pooled)


def tiny_resnet(num_classes: int = 10, width: int = 16) -> nn.Module:
    return TinyResNet(num_classes, width)


def tiny_sr(scale: int = 2, features: int = 32) -> nn.Module:
    return TinySR(scale, features)


def tiny_unet(num_classes: int = 5, width: int = 16) -> nn.Module:
    return TinyUNet(num_classes, width)


def tiny_text(vocab_size: int = 1000, dim: int = 32, heads: int = 2, max_len: int = 128, num_classes: int = 4) -> nn.Module:
    return TinyTextClassifier(vocab_size, dim, heads, max_len, num_classes)


class DigitsCNN(nn.Module):
    """A small CNN for scikit-learn's 8x8 handwritten digits (trained by trtpipe.digits: a real model on real data)."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, 1, 1), nn.ReLU(), nn.Conv2d(width, 2 * width, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(1), nn.Linear(2 * width * 16, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image))


def digits_cnn(num_classes: int = 10, width: int = 16) -> nn.Module:
    return DigitsCNN(num_classes, width)
