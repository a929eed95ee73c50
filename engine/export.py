"""A short standalone PyTorch script that rebuilds a model and loads its safetensors weights."""
from __future__ import annotations

from engine.stores.store import StoredModel

PREPARE = {
    "digit": "white ink on black, the digit fitted in 20x20 and centred by mass in 28x28 (as MNIST)",
    "object": "the object light on black, fitted in 28x28 (as Fashion-MNIST)",
    "photo": "the photo's centre square shrunk to 32x32, red, green and blue channels",
}


def standalone_script(stored: StoredModel) -> str:
    """The script's text. Every string that came from a user (name, id, dataset, labels) enters
    the code only as a Python literal (repr), never inside a docstring or comment, so no name can
    end a string and run code on whoever runs the export."""
    card = stored.card
    layers = ",\n".join(f"    nn.{layer!r}" for layer in stored.module)  # module reprs are constructors
    accuracy = f"{card.test_accuracy * 100:.2f}%" if card.test_accuracy is not None else "not measured"
    shape = ", ".join(str(int(n)) for n in card.input_shape)
    weights = f"{card.id}.safetensors"
    return f'''"""A network exported from NeuronLab (its name and training data are in NAME and TRAINED_ON).

Rebuilds the network and loads its weights. Needs torch and safetensors:
    python this_file.py path/to/weights.safetensors
Input: (N, {shape}) floats in 0..1; see PREPARE.
"""
import sys

import torch
from safetensors.torch import load_file
from torch import nn

NAME = {card.name!r}
MODEL_ID = {card.id!r}
TRAINED_ON = {card.dataset!r}
TEST_ACCURACY = {accuracy!r}
PARAMETERS = {int(card.parameters or 0)!r}
PREPARE = {PREPARE.get(card.preprocess, card.preprocess)!r}
LABELS = {[str(label) for label in card.labels]!r}
WEIGHTS = {weights!r}

model = nn.Sequential(
{layers},
)


def load(path=WEIGHTS):
    model.load_state_dict(load_file(path))
    return model.eval()


if __name__ == "__main__":
    load(sys.argv[1] if len(sys.argv) > 1 else WEIGHTS)
    with torch.no_grad():
        probabilities = torch.softmax(model(torch.zeros(1, {shape})), dim=1)[0]
    print(NAME, "reads a blank input as:", LABELS[int(probabilities.argmax())])
'''
