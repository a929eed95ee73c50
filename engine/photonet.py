"""A photo network pretrained on ImageNet: EfficientNet-Lite0 (Tan and Le, 2019; the "lite"
variant drops squeeze-and-excitation and uses ReLU6, for small devices), written as our own
nn.Sequential of plain stages so that every stage's output can be recorded (engine.models
.layer_outputs) and a new head can sit on its frozen body (transfer learning, engine.transfer).

Layout, input (B, 3, 224, 224) RGB in 0..1:
  normalize   (x - 127/255) / (128/255): the TensorFlow Lite checkpoints' scaling
  stem        conv 3x3 stride 2 -> 32, BatchNorm, ReLU6                   (B, 32, 112, 112)
  16 MBConv   1x1 expand (x6 but the first), depthwise 3x3 or 5x5, 1x1 project, BatchNorm after
              each, ReLU6 after the first two; the input added back where the shape is kept
  head        conv 1x1 -> 1280, BatchNorm, ReLU6                          (B, 1280, 7, 7)
  pool        global average                                              (B, 1280)
  classifier  dense 1280 -> 1000 ImageNet classes (logits)
Strided convolutions pad as TensorFlow's "same" does (more on the bottom and right), since the
weights were trained that way.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# (kernel, stride, expansion, output channels, repeats) per stage, as in the EfficientNet paper
STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
STEM, FEATURES, CLASSES = 32, 1280, 1000
INPUT_SIZE = 224
BN_EPS = 1e-3  # TensorFlow's BatchNorm epsilon, which the weights were trained with
MEAN, STD = 127 / 255, 128 / 255  # on 0..1 inputs: (pixel - 127) / 128


class SamePadConv(nn.Conv2d):
    """A convolution padded as TensorFlow's "same": output = ceil(input / stride), the odd pixel
    of padding at the bottom and right."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[:1:-1], self.kernel_size[::-1], self.stride[::-1]):  # W, then H
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def conv_bn(cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [SamePadConv(cin, cout, kernel, stride, groups), nn.BatchNorm2d(cout, eps=BN_EPS)]
    return nn.Sequential(*layers, nn.ReLU6()) if act else nn.Sequential(*layers)


class Normalize(nn.Module):
    """0..1 RGB to the scaling the network was trained on."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - MEAN) / STD


class MBConv(nn.Module):
    """Mobile inverted bottleneck: widen (1x1), filter each channel alone (depthwise kxk), narrow (1x1)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        wide = cin * expansion
        self.expand = conv_bn(cin, wide) if expansion != 1 else nn.Identity()
        self.depthwise = conv_bn(wide, wide, kernel, stride, groups=wide)
        self.project = conv_bn(wide, cout, act=False)
        self.residual = stride == 1 and cin == cout
        self.kernel, self.stride, self.expansion = kernel, stride, expansion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return out + x if self.residual else out


class GlobalPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C)
        return x.mean(dim=(2, 3))


class EfficientNetLite0(nn.Sequential):
    """normalize, stem, 16 blocks, head, pool, classifier: indexable like any of our networks.
    `body()` is everything before the classifier: (B, 3, H, W) -> (B, 1280) features."""

    def __init__(self, classes: int = CLASSES):
        blocks, cin = [], STEM
        for kernel, stride, expansion, cout, repeats in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expansion))
                cin = cout
        super().__init__(Normalize(), conv_bn(3, STEM, 3, 2), *blocks, conv_bn(cin, FEATURES),
                         GlobalPool(), nn.Linear(FEATURES, classes))

    def body(self) -> nn.Sequential:
        return nn.Sequential(*list(self)[:-1])


def block_indices() -> list[int]:
    """Positions in the Sequential of the MBConv blocks."""
    return list(range(2, 2 + sum(s[4] for s in STAGES)))


def stage_ends() -> list[int]:
    """Positions of the last block of each stage (where the resolution or width changes next)."""
    ends, at = [], 1
    for stage in STAGES:
        at += stage[4]
        ends.append(at)
    return ends


def from_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the original checkpoint's keys (`_conv_stem`, `_blocks.N._expand_conv`, ...) to this
    module's; counters of BatchNorm batches are dropped. KeyError for a key it does not know."""
    out = {}
    parts = {"_expand_conv": "expand.0", "_bn0": "expand.1", "_depthwise_conv": "depthwise.0",
             "_bn1": "depthwise.1", "_project_conv": "project.0", "_bn2": "project.1"}
    top = {"_conv_stem": "1.0", "_bn0": "1.1", "_conv_head": f"{2 + len(block_indices())}.0",
           "_bn1": f"{2 + len(block_indices())}.1", "_fc": f"{4 + len(block_indices())}"}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        names = key.split(".")
        if names[0] == "_blocks":
            block, part, leaf = int(names[1]), names[2], names[3]
            out[f"{2 + block}.{parts[part]}.{leaf}"] = value
        else:
            out[f"{top[names[0]]}.{names[1]}"] = value
    return out


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe_stages(classes: int = CLASSES) -> list[dict]:
    """The network stage by stage, for the transfer-learning lesson: name (input, stem, stage with its
    number, head, pool, classifier), what it does (in words, and as kernel, stride, expansion and
    blocks), output shape (C, H, W) for a 224x224 photo, and weights (BatchNorm's scale and shift included,
    its running statistics not). Worked out on torch's meta device: nothing is loaded or computed."""
    with torch.device("meta"):
        net = EfficientNetLite0(classes)
        x = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
        layers = list(net)
        rows = [{"name": "input", "what": "a colour photo", "output": [3, INPUT_SIZE, INPUT_SIZE], "weights": 0}]
        x = layers[0](x)  # normalize
        x = layers[1](x)
        rows.append({"name": "stem", "what": "conv 3x3, stride 2", "kernel": 3, "stride": 2, "output": list(x.shape[1:]),
                     "weights": count(layers[1])})
        at = 2
        for number, (kernel, stride, expansion, cout, repeats) in enumerate(STAGES, 1):
            blocks = layers[at:at + repeats]
            for block in blocks:
                x = block(x)
            rows.append({"name": "stage", "number": number, "what": f"{repeats} x MBConv {kernel}x{kernel}"
                         + (f", expand x{expansion}" if expansion != 1 else "") + (", stride 2" if stride == 2 else ""),
                         "blocks": repeats, "kernel": kernel, "expansion": expansion, "stride": stride,
                         "output": list(x.shape[1:]), "weights": sum(count(b) for b in blocks)})
            at += repeats
        x = layers[at](x)
        rows.append({"name": "head", "what": "conv 1x1", "kernel": 1, "output": list(x.shape[1:]), "weights": count(layers[at])})
        x = layers[at + 1](x)
        rows.append({"name": "pool", "what": "global average", "output": list(x.shape[1:]), "weights": 0})
        rows.append({"name": "classifier", "what": f"dense {FEATURES} -> {classes}", "output": [classes],
                     "weights": count(layers[at + 2])})
    return rows
