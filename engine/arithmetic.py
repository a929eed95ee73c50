"""The slides' arithmetic of images and layers: how many numbers an image is, how many weights and
biases a layer list has for any input shape (counted on torch's meta device: nothing the size of
the weights is ever allocated), and the worked examples of max pooling and of a colour convolution
(one kernel of depth 3, summed over the channels, plus one bias)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine import models
from engine.convolution import ShapeError, as_grid
from engine.refusal import Refusal

MAX_SIDE = 4096       # an image's height and width, at most
MAX_CHANNELS = 4      # grey 1, colour 3, colour with transparency 4
MAX_FEATURES = MAX_SIDE * MAX_SIDE * MAX_CHANNELS  # a flat input (a vector of numbers), at most
MAX_CLASSES = 10_000

# Lesson 002, "Max Pooling": a 4x4 feature map, pooled 2x2 with stride 2 -> [[.3, .9], [0, .4]]
SLIDES_POOL_INPUT = [[0.1, 0.2, 0.5, 0.9], [0.1, 0.3, 0.8, 0.9], [0.0, 0.0, 0.4, 0.4], [0.0, 0.0, 0.0, 0.1]]

# "Convolutions on RGB images" (lesson 004): a 5x5 colour image, one 3x3x3 kernel and one bias
COLOUR_INPUT = [
    [[3, 2, 3, 1, 8], [1, 9, 1, 3, 2], [2, 3, 5, 6, 6], [3, 2, 3, 5, 9], [1, 1, 2, 4, 5]],  # red
    [[0, 1, 2, 1, 0], [1, 2, 3, 2, 1], [2, 3, 4, 3, 2], [1, 2, 3, 2, 1], [0, 1, 2, 1, 0]],  # green
    [[5, 5, 5, 5, 5], [5, 5, 5, 5, 5], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],  # blue
]
COLOUR_KERNEL = [
    [[1, 0, -1], [1, 0, -1], [1, 0, -1]],   # red: vertical edges
    [[0, 0, 0], [0, 1, 0], [0, 0, 0]],      # green: the centre pixel
    [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],   # blue: horizontal edges
]
COLOUR_BIAS = 1.0

# "Why CNNs?": the slides' rows, each an input image and a first dense layer, and what the slide says
WHY_CNNS = [
    {"lesson": "002", "slide": "Number of Neural Net Input Nodes", "input": [3, 256, 256], "units": 128,
     "says": "256 × 256 × 3 = 196,608 input nodes required", "slide_inputs": 196_608},
    {"lesson": "004", "slide": "Convolutional Neural Networks: why?", "input": [3, 64, 64], "units": 128,
     "says": "n = 64*64*3 = 12288; 128 nodes in the first hidden layer; weight matrix: ~1.5 M weights",
     "slide_inputs": 12_288, "slide_weights": 1_500_000},
    {"lesson": "004", "slide": "Convolutional Neural Networks: why?", "input": [3, 1000, 1000], "units": 1000,
     "says": "1000*1000*3; 1000 nodes in the first hidden layer; weight matrix: 3 Billion parameters",
     "slide_inputs": 3_000_000, "slide_weights": 3_000_000_000},
]
CONV_BESIDE = {"filters": 32, "kernel": 3}  # the conv layer shown beside each dense layer

# Lesson 002, "Weights and Biases for a Layer": 3 inputs, hidden layers of 4, 5 and 3, 2 outputs
SLIDES_NETWORK = {"lesson": "002", "slide": "Weights and Biases for a Layer", "sizes": [3, 4, 5, 3, 2],
                  "rows": [["HL 1", 3, 4, 12, 4], ["HL 2", 4, 5, 20, 5], ["HL 3", 5, 3, 15, 3],
                           ["Output", 3, 2, 6, 2]],
                  "weights": 53, "biases": 14}


def _refuse(message: str, field: str) -> Refusal:
    return Refusal(422, "invalid_request", message, field)


def check_input(shape) -> tuple[int, ...]:
    """An input shape: [C, H, W] (an image, channels first) or [N] (a vector of N numbers)."""
    if not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3) or \
            any(isinstance(v, bool) or not isinstance(v, int) for v in shape):
        raise _refuse("input must be [channels, height, width] or [numbers], whole numbers", "input")
    if len(shape) == 1 and not 1 <= shape[0] <= MAX_FEATURES:
        raise _refuse(f"a flat input is from 1 to {MAX_FEATURES:,} numbers, not {shape[0]:,}", "input")
    if len(shape) == 3:
        c, h, w = shape
        if not 1 <= c <= MAX_CHANNELS or not 1 <= h <= MAX_SIDE or not 1 <= w <= MAX_SIDE:
            raise _refuse(f"an image has 1 to {MAX_CHANNELS} channels and sides of 1 to {MAX_SIDE} pixels, "
                          f"not {c}x{h}x{w}", "input")
    return tuple(shape)


def count(input_shape, layers: list[dict], classes: int | None = None) -> dict:
    """Inputs, weights and biases of each layer of `layers` (engine.models' layer specs) for inputs
    of `input_shape`, and the totals; with `classes`, the output layer too (one unit per class).
    Counted on the meta device: 1000x1000x3 into 1000 units is three billion weights, none made.
    Raises Refusal (422) for a shape, class count or layer list that cannot be."""
    shape = check_input(input_shape)
    if classes is not None and (isinstance(classes, bool) or not isinstance(classes, int)
                                or not 1 <= classes <= MAX_CLASSES):
        raise _refuse(f"classes is a whole number from 1 to {MAX_CLASSES:,}", "classes")
    rows, _, _ = models.measure(layers, classes or 1, shape)
    if classes is None:  # no output layer: drop what build_layers appended (its Flatten and Linear)
        while rows and rows[-1]["layer"] is None:
            rows.pop()
    elif rows and rows[-1]["layer"] is None:
        rows[-1]["label"] = f"Output {classes}"
    totals = {key: sum(r[key] for r in rows) for key in ("weights", "biases", "params", "macs")}
    return {"input": list(shape), "inputs": math.prod(shape), "layers": rows, **totals}


def network(sizes: list[int]) -> dict:
    """A dense network written as its layer sizes, like the slides' 3-4-5-3-2: the first is the
    inputs, the last the outputs; each row as the slide's table has it."""
    if not isinstance(sizes, list) or not 2 <= len(sizes) <= 12 or \
            any(isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 4096 for v in sizes):
        raise _refuse("sizes are 2 to 12 whole numbers from 1 to 4096, like 3-4-5-3-2", "sizes")
    counted = count([sizes[0]], [{"type": "dense", "units": n} for n in sizes[1:-1]], sizes[-1])
    dense = [r for r in counted["layers"] if r["type"] == "Linear"]
    rows = [{"layer": "Output" if i == len(dense) - 1 else f"HL {i + 1}", "inputs": r["inputs"],
             "nodes": r["output"][0], "weights": r["weights"], "biases": r["biases"]} for i, r in enumerate(dense)]
    return {"sizes": sizes, "rows": rows, "weights": counted["weights"], "biases": counted["biases"]}


def convolve_colour(image, kernel, bias: float = 0.0) -> dict:
    """One colour convolution as a conv layer computes one filter: a kernel as deep as the image
    (C, k, k) laid on each window of the image (C, H, W), every product of every channel added up,
    plus the bias: one number per position. Each step keeps each channel's products and sum."""
    x = _stack(image, "input")
    k = _stack(kernel, "kernel")
    if x.shape[0] != k.shape[0]:
        raise ShapeError(f"the kernel has {k.shape[0]} channels and the image {x.shape[0]}: they must match")
    if k.shape[1] > x.shape[1] or k.shape[2] > x.shape[2]:
        raise ShapeError(f"the {k.shape[1]}x{k.shape[2]} kernel is larger than the {x.shape[1]}x{x.shape[2]} image")
    if not math.isfinite(bias):
        raise ShapeError("bias must be a finite number")
    out = F.conv2d(x[None], k[None], torch.tensor([float(bias)], dtype=x.dtype))[0, 0]
    kh, kw = k.shape[1:]
    steps = []
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            products = x[:, r:r + kh, c:c + kw] * k
            steps.append({"row": r, "col": c, "top": r, "left": c,
                          "channels": [{"products": p.tolist(), "sum": p.sum().item()} for p in products],
                          "bias": float(bias), "sum": out[r, c].item()})
    return {"output": out.tolist(), "formula": {"n": list(x.shape), "k": list(k.shape), "output": list(out.shape)},
            "steps": steps}


def _stack(values, name: str) -> torch.Tensor:
    """A (C, H, W) stack of same-sized grids, C from 1 to 4."""
    if not isinstance(values, (list, tuple)) or not 1 <= len(values) <= MAX_CHANNELS:
        raise ShapeError(f"{name} must be 1 to {MAX_CHANNELS} channels, each a 2-D grid")
    planes = [as_grid(v, f"{name} channel {i + 1}") for i, v in enumerate(values)]
    if len({tuple(p.shape) for p in planes}) != 1:
        raise ShapeError(f"every channel of the {name} must be the same size")
    return torch.stack(planes)

