"""A short standalone PyTorch script that rebuilds a model and loads its safetensors weights."""
from __future__ import annotations

from engine.store import StoredModel

PREPARE = {
    "digit": "white ink on black, the digit fitted in 20x20 and centred by mass in 28x28 (as MNIST)",
    "object": "the object light on black, fitted in 28x28 (as Fashion-MNIST)",
    "photo": "the photo's centre square shrunk to 32x32, red, green and blue channels",
}


def standalone_script(stored: StoredModel) -> str:
    card = stored.card
    layers = ",\n".join(f"    nn.{layer!r}" for layer in stored.module)  # module reprs are constructors
    accuracy = f"{card.test_accuracy * 100:.2f}%" if card.test_accuracy is not None else "not measured"
    shape = ", ".join(str(n) for n in card.input_shape)
    return f'''"""{card.name} ({card.id}), exported from NeuronLab.

Rebuilds the network and loads its weights. Needs torch and safetensors:
    python {card.id}.py {card.id}.safetensors
Trained on {card.dataset}; test accuracy {accuracy}; {card.parameters:,} trainable parameters.
Input: (N, {shape}) floats in 0..1, {PREPARE.get(card.preprocess, card.preprocess)}.
"""
import sys

import torch
from safetensors.torch import load_file
from torch import nn

LABELS = {card.labels!r}

model = nn.Sequential(
{layers},
)


def load(path="{card.id}.safetensors"):
    model.load_state_dict(load_file(path))
    return model.eval()


if __name__ == "__main__":
    load(sys.argv[1] if len(sys.argv) > 1 else "{card.id}.safetensors")
    with torch.no_grad():
        probabilities = torch.softmax(model(torch.zeros(1, {shape})), dim=1)[0]
    print("a blank input reads as:", LABELS[int(probabilities.argmax())])
'''
