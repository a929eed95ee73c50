"""The torch-free reader (engine.lite): every layer type, every preset, against torch as the oracle;
the antialiased resize against torch's; and the frame reader's process imports no torch."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import lite, models
from engine.inference import probabilities, program_of
from engine.preprocess import resize
from engine.stores import cards
from engine.stores.store import ModelCard, StoredModel

ROOT = Path(__file__).resolve().parent.parent
EVERY_LAYER = [
    {"type": "conv", "filters": 6, "kernel": 5, "padding": "same", "activation": "tanh"},
    {"type": "batchnorm"}, {"type": "pool", "size": 2, "kind": "avg"},
    {"type": "conv", "filters": 8, "kernel": 3, "activation": "elu", "bias": False},
    {"type": "activation", "fn": "leaky_relu"}, {"type": "pool", "size": 2},
    {"type": "dropout", "rate": 0.5}, {"type": "dense", "units": 20, "activation": "sigmoid"},
    {"type": "batchnorm"}, {"type": "dense", "units": 12, "activation": "relu"},
]


def stored(architecture, input_shape=models.INPUT_SHAPE, classes=10) -> StoredModel:
    torch.manual_seed(0)
    net = models.build(architecture, classes, input_shape)
    with torch.no_grad():  # running statistics that are not the defaults, as after training
        for m in net:
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    card = ModelCard(id="t", name="t", task="digits", dataset="mnist", labels=[str(i) for i in range(classes)],
                     architecture="custom", preprocess="digit", input_shape=list(input_shape))
    return StoredModel(card, net.eval())


@pytest.mark.parametrize("architecture", [*models.PRESETS, "every layer"])
def test_numpy_reads_as_torch_does(architecture):
    model = stored(EVERY_LAYER if architecture == "every layer" else architecture)
    x = np.random.default_rng(1).random((5, 28, 28), dtype=np.float32)
    program = program_of(model)
    assert np.allclose(lite.probabilities(program, x), probabilities(model, x), atol=1e-5)


def test_a_colour_project_network_reads_as_torch_does():
    model = stored(models.PHOTO_LAYERS, models.PHOTO_INPUT, classes=3)
    x = np.random.default_rng(2).random((4, 3, 32, 32), dtype=np.float32)
    assert np.allclose(lite.probabilities(program_of(model), x), probabilities(model, x), atol=1e-5)


def test_a_layer_the_reader_cannot_run_is_refused_by_name():
    model = stored("mlp_16")
    model.module.insert(0, torch.nn.Conv2d(1, 1, 3, stride=2))
    with pytest.raises(ValueError, match="cannot run"):
        program_of(model)


@pytest.mark.parametrize("size, new", [((100, 80), (20, 16)), ((7, 30), (5, 20)), ((3, 9), (20, 20)),
                                       ((280, 280), (28, 28)), ((13, 5), (20, 8)), ((1, 40), (1, 20))])
def test_the_resize_is_torchs_antialiased_bilinear(size, new):
    a = np.random.default_rng(3).random(size, dtype=np.float32)
    oracle = F.interpolate(torch.from_numpy(a)[None, None], size=new, mode="bilinear", antialias=True,
                           align_corners=False)[0, 0].clamp(0, 1).numpy()
    assert np.abs(resize(a, *new) - oracle).max() < 1e-5


def test_the_frame_reader_process_imports_neither_torch_nor_the_web_framework():
    assert tuple(cards.INPUT_SHAPE) == tuple(models.INPUT_SHAPE)
    code = ("import sys, app.frames, app.reading; heavy = {'torch', 'fastapi', 'starlette', 'pydantic'} & set(sys.modules); "
            "print(sorted(heavy)); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
