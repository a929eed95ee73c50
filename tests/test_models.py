import pytest
import torch

from engine import models
from engine.training.augment import AugmentConfig, augment


@pytest.mark.parametrize("name", sorted(models.ARCHITECTURES))
def test_architectures_map_images_to_logits(name):
    net = models.build(name).eval()
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    outputs = models.layer_outputs(net, torch.rand(1, 1, 28, 28))
    assert len(outputs) == len(net) and outputs[-1][1].shape == (1, 10)


def test_recipe_matches_the_slides_keras_model():
    net = models.build("mnist_recipe")
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d", "Flatten", "Linear", "ReLU",
                     "BatchNorm1d", "Linear"]
    # Keras counts: conv 320, BN 64 trainable, dense 540,900, BN 200 trainable, dense 1,010
    assert models.count_parameters(net) == 320 + 64 + 540_900 + 200 + 1_010
    shapes = [tuple(o.shape[1:]) for _, o in models.layer_outputs(net.eval(), torch.rand(1, 1, 28, 28))]
    assert shapes[0] == (32, 26, 26) and shapes[3] == (32, 13, 13) and shapes[4] == (5408,)


def test_unknown_architecture():
    with pytest.raises(KeyError, match="choose one of"):
        models.build("resnet9000")


def test_augment_keeps_shape_range_and_is_seeded():
    x = torch.rand(16, 1, 28, 28)
    a = augment(x, AugmentConfig(), torch.Generator().manual_seed(3))
    b = augment(x, AugmentConfig(), torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert 0 <= a.min() and a.max() <= 1 and not torch.equal(a, x)


def test_augment_with_p_zero_is_identity():
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(augment(x, AugmentConfig(p=0.0), torch.Generator().manual_seed(0)), x)


def test_stroke_augmentation_thickens_and_thins():
    from engine.training.augment import random_stroke
    x = torch.zeros(200, 1, 28, 28)
    x[:, :, 10:18, 13:15] = 1
    out = random_stroke(x, AugmentConfig(stroke=1.0), torch.Generator().manual_seed(0))
    ink = out.sum(dim=(1, 2, 3))
    assert ink.max() > x[0].sum() * 1.5 and ink.min() < x[0].sum() * 0.6


def test_marker_augmentation_draws_some_digits_two_pixels_heavier_all_round():
    """heavy = the share of digits drawn as with a thick marker (the shipped digits model learns
    blobby, closed-up loops from them); 0 leaves the augmentation as it was."""
    x = torch.zeros(400, 1, 28, 28)
    x[:, :, 8:20, 13:15] = 1  # a "1", 2 px wide
    plain = AugmentConfig(p=1.0, rotate_deg=0, shear=0, scale=(1, 1), aspect=0, shift_px=0, stroke=0)
    g = lambda: torch.Generator().manual_seed(0)
    assert torch.equal(augment(x, plain, g()), augment(x, AugmentConfig(**{**plain.__dict__, "heavy": 0.0}), g()))
    heavy = augment(x, AugmentConfig(**{**plain.__dict__, "heavy": 0.25}), g())
    widths = (heavy[:, 0, 14] > 0.5).sum(dim=1)
    assert set(widths.tolist()) == {2, 6}  # as drawn, or 2 px more on each side
    assert 0.15 < (widths == 6).float().mean() < 0.35


def test_each_row_says_how_many_numbers_it_reads():
    rows, params, _ = models.measure([{"type": "dense", "units": 4}, {"type": "dense", "units": 5}], 2, (3,))
    assert [r["inputs"] for r in rows] == [3, 4, 5] and params == 12 + 4 + 20 + 5 + 10 + 2
    rows, _, _ = models.measure("mnist_recipe")
    assert rows[0]["inputs"] == 28 * 28 and rows[4]["inputs"] == 32 * 13 * 13  # the Flatten reads 5408
