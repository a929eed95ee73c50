import json

import pytest
import torch

from app.settings import ROOT
from engine import inference, models
from engine.stores import store

SHIPPED = ROOT / "models"


def test_save_and_load_round_trip(tmp_path):
    net = models.build("mnist_recipe").eval()
    card = store.ModelCard(id="t1", name="T", task="digits", dataset="mnist", labels=list("0123456789"),
                           architecture="mnist_recipe", preprocess="digit")
    store.save(tmp_path, card, net)
    loaded = store.load(tmp_path / "t1.json")
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded.module(x), net(x))
    assert json.loads((tmp_path / "t1.json").read_text())["architecture"] == "mnist_recipe"


def test_bad_ids_are_refused(tmp_path):
    card = store.ModelCard(id="../evil", name="", task="digits", dataset="mnist", labels=["0"],
                           architecture="mnist_recipe", preprocess="digit")
    with pytest.raises(ValueError, match="lowercase"):
        store.save(tmp_path, card, models.build("mnist_recipe", 1))


def test_shipped_models_have_complete_cards():
    registry = store.ModelRegistry([SHIPPED])
    assert {"digits", "mnist-recipe", "fashion"} <= set(registry.models)
    for card in registry.cards():
        if card.id == "imagenet":  # pretrained elsewhere: its card says by whom, and what it cannot measure here
            assert card.test_accuracy is None and card.training["published_top1"] and card.training["source"]
            assert card.training["command"] == "python -m engine.imagenet install"
            continue
        assert card.test_accuracy and card.parameters and card.training["command"].startswith("python -m engine.train")
        assert {"epochs", "seed", "seconds"} <= set(card.training)
    assert registry.get("digits").card.test_accuracy >= 0.993
    assert registry.get("fashion").card.test_accuracy >= 0.90


@pytest.mark.parametrize("model_id, dataset", [("digits", "mnist"), ("mnist-recipe", "mnist"), ("fashion", "fashion")])
def test_loaded_model_matches_its_card_on_a_test_slice(model_id, dataset, tmp_path):
    from engine import datasets
    stored = store.ModelRegistry([SHIPPED]).get(model_id)
    data = datasets.load(dataset, ROOT / "data")
    x, y = data.test.images[:3000] / 255.0, data.test.labels[:3000]
    accuracy = float((inference.probabilities(stored, x).argmax(1) == y).mean())
    assert accuracy >= stored.card.test_accuracy - 0.01  # a slice, not the whole test set


def test_registry_reports_unknown_ids():
    with pytest.raises(KeyError, match="Known models"):
        store.ModelRegistry([SHIPPED]).get("nope")
    assert store.ModelRegistry([ROOT / "no-such-folder"]).models == {}
