import numpy as np
import pytest
from PIL import Image, ImageDraw

from engine.preprocess import center_of_mass, fit, ink_map, prepare
from tests.helpers import on_canvas


def mean_abs(a, b):
    return float(np.abs(a - b).mean())


@pytest.fixture(scope="module")
def digits(mnist):
    return [mnist.test.images[i] for i in range(12)]


def test_output_is_28x28_centred(digits):
    p = prepare(on_canvas(digits[0]))
    assert p.input.shape == (28, 28) and p.input.dtype == np.float32
    assert 0 <= p.input.min() and p.input.max() <= 1
    cx, cy = p.center_of_mass
    assert abs(cx - 13.5) <= 0.75 and abs(cy - 13.5) <= 0.75
    assert max(p.fitted.shape) == 20


def test_shifted_digit_gives_nearly_the_same_input(digits):
    for d in digits:
        a = prepare(on_canvas(d, at=(10, 10))).input
        b = prepare(on_canvas(d, at=(60, 45))).input
        assert mean_abs(a, b) < 0.02


def test_scaled_digit_gives_nearly_the_same_input(digits):
    diffs = [mean_abs(prepare(on_canvas(d, scale=4, at=(100, 30))).input,
                      prepare(on_canvas(d, scale=9, at=(10, 10))).input) for d in digits]
    assert np.median(diffs) < 0.02 and max(diffs) < 0.08


def test_polarity_and_transparency_do_not_matter(digits):
    d = digits[3]
    dark_on_light = prepare(on_canvas(d)).input
    light_on_dark = prepare(on_canvas(d, dark_on_light=False)).input
    alpha = on_canvas(d, dark_on_light=False)
    transparent = Image.new("RGBA", alpha.size, (255, 0, 0, 0))
    transparent.putalpha(alpha)
    assert mean_abs(dark_on_light, light_on_dark) < 0.01
    assert mean_abs(dark_on_light, prepare(transparent).input) < 0.01


def test_pen_colour_and_grey_paper_do_not_matter(digits):
    d = on_canvas(digits[5])
    blue_on_grey = Image.merge("RGB", [Image.eval(d, lambda v: 200 * v // 255)] * 2 + [Image.eval(d, lambda v: 120 + v // 3)])
    assert mean_abs(prepare(d).input, prepare(blue_on_grey).input) < 0.06


def test_redrawn_mnist_digits_are_read_right(mnist):
    """Test digits enlarged, moved and re-polarised as a canvas would show them, then prepared:
    the shipped digit model still reads them as well as the original test images."""
    from app.settings import ROOT
    from engine import inference
    from engine.stores import store
    model = store.ModelRegistry([ROOT / "models"]).get("digits")
    rng = np.random.default_rng(0)
    idx = rng.choice(len(mnist.test), 300, replace=False)
    inputs = []
    for i in idx:
        scale = rng.uniform(3, 9)
        at = tuple(int(v) for v in rng.integers(0, 280 - int(28 * scale), 2))
        inputs.append(prepare(on_canvas(mnist.test.images[i], scale=scale, at=at)).input)
    accuracy = (inference.probabilities(model, np.stack(inputs)).argmax(1) == mnist.test.labels[idx]).mean()
    assert accuracy >= 0.98


def test_blank_images_are_empty():
    assert prepare(Image.new("RGB", (200, 200), "white")).empty
    assert prepare(Image.new("RGBA", (50, 50), (0, 0, 0, 0))).empty
    assert prepare(Image.new("L", (1, 1), 0)).empty


def test_fit_keeps_the_aspect_ratio():
    bar = np.ones((100, 10), np.float32)
    assert fit(bar, 20).shape == (20, 2)
    assert fit(np.ones((5, 50), np.float32), 20).shape == (2, 20)


def test_object_style_fills_the_box_and_centres_by_box():
    img = Image.new("L", (100, 60), 255)
    img.paste(0, (20, 10, 80, 50))  # a dark 60x40 block on white
    p = prepare(img, "object")
    assert max(p.fitted.shape) == 28
    rows = np.nonzero(p.input.any(axis=1))[0]
    assert rows[0] + rows[-1] in (26, 27, 28)


def test_ink_map_and_center_of_mass():
    img = Image.new("L", (10, 10), 255)
    img.putpixel((7, 2), 0)
    ink = ink_map(img)
    assert ink[2, 7] == pytest.approx(1.0) and ink.sum() == pytest.approx(1.0)
    assert center_of_mass(ink) == (7.0, 2.0)


def test_drawn_digits_in_many_sizes_places_slants_and_pens_are_read_right():
    """Stroke-drawn digits (not MNIST): big, mid-size, small in a corner, tiny; upright and
    slanted both ways; pens from hair-thin to a fifth of the digit's height."""
    from app.settings import ROOT
    from engine import inference
    from engine.stores import store
    from tests.helpers import STROKE_DIGITS, draw_digit
    model = store.ModelRegistry([ROOT / "models"]).get("digits")
    boxes = [(0.05, 0.05, 0.95, 0.95), (0.2, 0.1, 0.8, 0.9), (0.6, 0.6, 0.85, 0.9), (0.1, 0.1, 0.22, 0.25)]
    inputs, truth = [], []
    for width in (3, 6, 10, 16, 24, 34, 44):
        for box in boxes:
            if not 0.015 <= width / ((box[3] - box[1]) * 280) <= 0.25:
                continue
            for slant in (0.0, 0.25, -0.15):
                for digit in STROKE_DIGITS:
                    inputs.append(prepare(draw_digit(digit, width=width, box=box, slant=slant)).input)
                    truth.append(int(digit))
    guesses = inference.probabilities(model, np.stack(inputs)).argmax(1)
    assert len(truth) > 500 and (guesses == np.array(truth)).mean() >= 0.97


def _accuracy(mnist, make_image, n=150):
    from app.settings import ROOT
    from engine import inference
    from engine.stores import store
    model = store.ModelRegistry([ROOT / "models"]).get("digits")
    idx = np.random.default_rng(1).choice(len(mnist.test), n, replace=False)
    inputs = np.stack([prepare(make_image(mnist.test.images[i])).input for i in idx])
    return (inference.probabilities(model, inputs).argmax(1) == mnist.test.labels[idx]).mean()


def test_unevenly_lit_paper_is_corrected(mnist):
    def side_lit(digit):
        grey = np.asarray(on_canvas(digit), np.float32) * np.linspace(0.55, 1.0, 280)[None, :]
        return Image.fromarray(grey.astype(np.uint8))
    assert _accuracy(mnist, side_lit) >= 0.97
    assert "uneven lighting: corrected" in prepare(side_lit(mnist.test.images[0])).notes


def test_noisy_scans_are_read(mnist):
    rng = np.random.default_rng(2)
    def noisy(digit):
        grey = np.asarray(on_canvas(digit), np.float32) + rng.normal(0, 40, (280, 280))
        return Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8))
    assert _accuracy(mnist, noisy) >= 0.97


def test_a_speck_far_from_the_digit_does_not_shrink_it(digits):
    clean = on_canvas(digits[1], scale=5, at=(20, 20))
    dusty = clean.copy()
    dusty.paste(0, (260, 260, 263, 263))  # a 3x3 speck in the far corner
    a, b = prepare(clean), prepare(dusty)
    assert b.bbox == a.bbox and mean_abs(a.input, b.input) < 0.01


def test_paper_on_a_dark_table_is_cropped_to_the_paper(mnist):
    from app.settings import ROOT
    from engine import inference
    from engine.stores import store
    model = store.ModelRegistry([ROOT / "models"]).get("digits")
    rng = np.random.default_rng(3)
    right = 0
    for i in range(40):
        table = rng.normal(45, 8, (300, 400))
        sheet = np.asarray(on_canvas(mnist.test.images[i], size=180, scale=3.5, at=(40, 40)), np.float32)
        table[60:240, 110:290] = sheet * np.linspace(0.8, 1.0, 180)[None, :]  # lit paper with the digit
        photo = Image.fromarray(np.clip(table, 0, 255).astype(np.uint8)).convert("RGB")
        p = prepare(photo)
        assert "paper on a darker surface: cropped to the paper" in p.notes
        right += int(inference.probabilities(model, p.input[None])[0].argmax()) == mnist.test.labels[i]
    assert right >= 38


@pytest.fixture(scope="module")
def digits_model():
    from app.settings import ROOT
    from engine.stores import store
    return store.ModelRegistry([ROOT / "models"]).get("digits")


@pytest.mark.parametrize("pen", [0.08, 0.2, 0.35])
def test_the_stroke_width_is_measured_as_drawn(pen):
    from engine.preprocess import THIN_SCALE, resize, stroke_width
    from tests.helpers import draw_digit
    cropped = prepare(draw_digit("8", width=round(pen * 224))).cropped
    h, w = cropped.shape
    small = resize(cropped, round(h * THIN_SCALE / max(h, w)), round(w * THIN_SCALE / max(h, w)))
    drawn = pen * 224 * THIN_SCALE / max(h, w)
    assert abs(stroke_width(small > 0.5) - drawn) < 0.25 * drawn + 1


@pytest.mark.parametrize("digit", ["3", "2", "5", "7", "8"])
def test_a_thick_marker_digit_is_thinned_and_read_right(digits_model, digit):
    from engine.inference import classify
    from tests.helpers import draw_digit
    """A marker a third as wide as the digit is tall fills the loops ("3" read as "8"); its strokes
    are thinned towards MNIST's pen first, and a thin pen's digit is left as drawn."""
    thick = prepare(draw_digit(digit, width=round(0.35 * 224)))
    assert any("thick strokes" in note for note in thick.notes)
    assert not any("thick strokes" in note for note in prepare(draw_digit(digit, width=18)).notes)
    assert classify(digits_model, draw_digit(digit, width=round(0.35 * 224))).prediction == digit


def bar(vertical: bool, pen: int, length: int = 200) -> Image.Image:
    """A lone straight stroke: a "1", or the first bar of a "7" as it is being drawn."""
    img = Image.new("L", (280, 280), "white")
    a, b = (280 - length) // 2, (280 + length) // 2
    ImageDraw.Draw(img).line([(140, a), (140, b)] if vertical else [(a, 140), (b, 140)], fill="black", width=pen)
    return img


@pytest.mark.parametrize("vertical", [True, False])
def test_a_lone_straight_stroke_is_measured_by_its_own_width(vertical):
    """The ink of a straight stroke fills its crop edge to edge: its width is still the pen's,
    not "the whole crop never erodes" (which once read a "1" as thousands of pixels wide, spent
    seconds eroding it with a huge filter and left nothing to read)."""
    from engine.preprocess import THIN_SCALE, resize, stroke_width
    cropped = prepare(bar(vertical, 18)).cropped
    h, w = cropped.shape
    small = resize(cropped, round(h * THIN_SCALE / max(h, w)), round(w * THIN_SCALE / max(h, w)))
    assert stroke_width(small > 0.5) <= min(small.shape) + 1


@pytest.mark.parametrize("vertical", [True, False])
def test_a_one_and_a_dash_keep_their_ink(digits_model, vertical):
    from engine.inference import classify
    prepared = prepare(bar(vertical, 18))
    assert not any("thick strokes" in note for note in prepared.notes)
    assert prepared.input.sum() > 20  # about as much ink as an MNIST "1"
    if vertical:
        assert classify(digits_model, bar(True, 18)).prediction == "1"


def test_a_thick_one_is_thinned_by_at_most_a_third():
    thick = prepare(bar(True, 70))
    assert any("thick strokes" in note for note in thick.notes)
    columns = (thick.input > 0.5).any(axis=0).sum()
    assert 2 <= columns <= 8


def test_every_frame_of_a_stroke_being_drawn_keeps_its_ink():
    """The classroom bench's growing "7", frame by frame (its first frames are one bar)."""
    import io

    from bench.bench_inference import stroke_frames
    frames = [prepare(Image.open(io.BytesIO(data))) for data in stroke_frames(112)]
    assert all(prepared.input is not None and prepared.input.sum() > 15 for prepared in frames)
    assert not any("thick strokes" in note for note in frames[-1].notes)  # the whole 7, an ordinary pen
