"""Inside the network: convolution and pooling against torch, the slides' arithmetic, the API."""
import base64
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine import convolution as conv
from tests.helpers import encode, on_canvas


def test_the_slides_worked_example():
    out = conv.convolve(conv.SLIDES_INPUT, conv.VERTICAL_EDGE)
    assert out["output"] == [[-3, 4, -7], [-3, 0, -8], [-4, -9, -10]]
    first = out["steps"][0]
    assert first["products"] == [[3, 0, -3], [1, 0, -1], [2, 0, -5]] and first["sum"] == -3
    assert out["steps"][1]["sum"] == 4  # 2*1 + 9*1 + 3*1 - (1 + 3 + 6)


def test_the_slides_vertical_edge():
    assert conv.convolve(conv.EDGE_INPUT, conv.VERTICAL_EDGE)["output"] == [[0, 24, 24, 0]] * 4


@pytest.mark.parametrize("size, k, stride, padding", list(itertools.product(
    [(5, 5), (7, 6)], [1, 2, 3], [1, 2, 3], ["valid", "same", 0, 1, 2])))
def test_convolve_matches_torch_conv2d(size, k, stride, padding):
    rng = np.random.default_rng(sum(size) + k + stride)
    x, w = rng.normal(size=size), rng.normal(size=(k, k))
    out = conv.convolve(x.tolist(), w.tolist(), stride, padding)
    top, bottom = conv.padding_amounts(k, padding)
    t = F.pad(torch.tensor(x)[None, None], (top, bottom, top, bottom))
    expected = F.conv2d(t, torch.tensor(w)[None, None], stride=stride)[0, 0]
    assert np.allclose(out["output"], expected.numpy())
    f = out["formula"]
    assert f["output"] == [conv.output_size(size[i], k, f["padding"][i], stride) for i in (0, 1)]
    if padding == "same" and stride == 1:
        assert f["output"] == list(size)


@pytest.mark.parametrize("size, stride", [(2, None), (2, 1), (3, 2)])
def test_max_pool_matches_torch(size, stride):
    x = np.random.default_rng(size).normal(size=(7, 7))
    out = conv.max_pool(x.tolist(), size, stride)
    expected = F.max_pool2d(torch.tensor(x)[None, None], size, stride or size)[0, 0]
    assert np.allclose(out["output"], expected.numpy())
    assert out["steps"][0]["max"] == pytest.approx(x[:size, :size].max())


def test_kernel_table_on_an_image():
    img = np.zeros((20, 20, 3), np.float32)
    img[:, 10:] = 200
    identity = conv.apply_kernel(img, conv.KERNELS["identity"])
    assert np.allclose(identity, img)
    edges = conv.apply_kernel(img[..., 0], conv.KERNELS["edge_all"])
    assert edges[:, 10].max() > 0 and edges[:, 3].max() == 0 and edges.shape == (20, 20)
    blurred = conv.apply_kernel(img[..., 0], conv.KERNELS["box_blur"])
    assert 0 < blurred[5, 10] < 200


@pytest.mark.parametrize("body, field", [
    ({"input": [[1, 2], [3, 4]], "kernel": conv.VERTICAL_EDGE}, "input"),          # kernel larger than input
    ({"input": [[1, 2, 3], [4, 5]], "kernel": [[1]]}, "input"),                     # not rectangular
    ({"input": [[0] * 100] * 100, "kernel": [[1]]}, "input"),                       # too large to look at
    ({"input": conv.SLIDES_INPUT, "kernel": conv.VERTICAL_EDGE, "stride": 0}, "stride"),
    ({"input": conv.SLIDES_INPUT, "kernel": conv.VERTICAL_EDGE, "padding": "full"}, "padding"),
    ({"input": [["a"]], "kernel": [[1]]}, "input"),
])
def test_convolve_api_bad_input(client, body, field):
    response = client.post("/api/convolve", json=body)
    assert response.status_code == 422 and any(k.startswith(field) for k in response.json()["fields"]), response.json()


def test_a_huge_grid_is_refused_before_parsing(client):
    row = "[" + ",".join(["0"] * 10000) + "]"
    body = '{"input": [' + ",".join([row] * 200) + '], "kernel": [[1]]}'
    assert client.post("/api/convolve", content=body, headers={"content-type": "application/json"}).status_code in (413, 422)


def test_convolve_and_pool_api(client):
    out = client.post("/api/convolve", json={"input": conv.SLIDES_INPUT, "kernel": conv.VERTICAL_EDGE}).json()
    assert out["output"][0] == [-3, 4, -7] and len(out["steps"]) == 9
    pooled = client.post("/api/pool", json={"input": out["output"], "size": 2, "stride": 1}).json()
    assert pooled["output"] == [[4, 4], [0, 0]]
    assert client.post("/api/pool", json={"input": [[1]], "size": 2}).status_code == 422
    assert "sharpen" in client.get("/api/kernels").json()["kernels"]


def test_activations_shapes_follow_each_layer(client, mnist):
    digit = encode(on_canvas(mnist.test.images[0]))
    body = client.post("/api/activations", files={"image": ("d.png", digit)}, data={"model": "mnist-recipe"}).json()
    shapes = [layer["shape"] for layer in body["layers"]]
    assert shapes[0] == [32, 26, 26] and shapes[3] == [32, 13, 13] and shapes[-1] == [10]
    first = body["layers"][0]["maps"]
    assert (first["channels"], first["height"], first["width"]) == (32, 26, 26)
    assert len(base64.b64decode(first["base64"])) == 32 * 26 * 26
    seen = body["input"]  # the same image form as everywhere else
    assert (seen["width"], seen["height"], len(base64.b64decode(seen["base64"]))) == (28, 28, 784)
    assert body["prediction"] == str(mnist.test.labels[0])
    assert sum(body["layers"][-1]["probabilities"]) == pytest.approx(1)


def test_activations_bad_input(client):
    assert client.post("/api/activations", files={"image": ("x.png", b"nope")}).status_code == 415
    blank = encode(Image.new("L", (50, 50), 255))
    assert client.post("/api/activations", files={"image": ("b.png", blank)}).status_code == 422
    assert client.post("/api/activations", files={"image": ("b.png", blank)}, data={"model": "zzz"}).status_code == 404


def test_filters_api(client):
    layers = client.get("/api/models/mnist-recipe/filters").json()["layers"]
    assert layers[0]["shape"] == [32, 1, 3, 3] and len(layers[0]["weights"]) == 32
    assert client.get("/api/models/nope/filters").status_code == 404


def test_a_model_without_conv_layers_has_no_filters(client, settings):
    from engine import models
    from engine.stores import store
    card = store.ModelCard(id="flat", name="Flat", task="digits", dataset="mnist", labels=list("0123456789"),
                           architecture="mlp_16", preprocess="digit")
    store.save(settings.data_dir / "models", card, models.build("mlp_16"))
    client.app.state.services.registry.add("flat")
    body = client.get("/api/models/flat/filters")
    assert body.status_code == 422 and "no convolution layers" in body.json()["message"]


def test_kernel_apply_and_samples(client, mnist):
    photo = encode(Image.new("RGB", (64, 48), (200, 30, 30)))
    body = client.post("/api/kernels/apply", files={"image": ("p.png", photo)},
                       data={"kernel": "gaussian_blur", "mode": "colour"}).json()
    before, after = body["before"], body["after"]  # the one image form: red, green, blue planes
    assert (before["channels"], before["height"], before["width"]) == (3, 48, 64) == (after["channels"], after["height"], after["width"])
    planes = np.frombuffer(base64.b64decode(before["base64"]), np.uint8).reshape(3, 48, 64)
    assert (planes[:, 0, 0] == [200, 30, 30]).all()
    assert len(base64.b64decode(after["base64"])) == 3 * 48 * 64
    grey = client.post("/api/kernels/apply", files={"image": ("p.png", photo)}, data={"kernel": "sharpen"}).json()
    assert grey["before"]["channels"] == 1 and len(base64.b64decode(grey["before"]["base64"])) == 48 * 64
    custom = client.post("/api/kernels/apply", files={"image": ("p.png", photo)}, data={"kernel": "[[0,0,0],[0,2,0],[0,0,0]]"})
    assert custom.status_code == 200
    bad = client.post("/api/kernels/apply", files={"image": ("p.png", photo)}, data={"kernel": "[[1,2],[3]]"})
    assert bad.status_code == 422 and bad.json()["fields"] == {"kernel": "not a preset or a grid"}
    samples = client.get("/api/samples?n=5").json()
    first = samples["images"][0]
    assert len(samples["images"]) == 5 and (first["width"], first["height"], len(base64.b64decode(first["base64"]))) == (28, 28, 784)
    assert client.get("/api/samples?n=500").status_code == 422


def test_shipped_models_have_no_filter_history_and_say_so(client):
    assert client.get("/api/models/digits/filters").json()["history"] is False
    missing = client.get("/api/models/digits/history")
    assert missing.status_code == 404 and missing.json()["error"] == "no_history"
    assert client.get("/api/models/nope/history").status_code == 404


@pytest.mark.parametrize("layer_index, channel, row, col", [(0, 3, 0, 0), (0, 31, 25, 25), (0, 7, 12, 9)])
def test_a_feature_map_cell_is_worked_out_as_torch_computes_it(client, mnist, layer_index, channel, row, col):
    """The server explains a cell (the page no longer redoes the convolution): window x filter +
    bias equals the map's value, and the window is the prepared input's own pixels."""
    from engine.activations import explain_cell
    from engine.preprocess import prepare
    stored = client.app.state.services.registry.get("mnist-recipe")
    image = on_canvas(mnist.test.images[0])
    x = prepare(image, "digit").input
    cell = explain_cell(stored, x, layer_index, channel, row, col)
    conv = stored.module[layer_index]
    with torch.no_grad():
        oracle = torch.nn.functional.conv2d(torch.from_numpy(x)[None, None], conv.weight, conv.bias, conv.stride, conv.padding)
    assert cell["value"] == pytest.approx(float(oracle[0, channel, row, col]), abs=1e-5)
    assert cell["sum"] == pytest.approx(cell["value"], abs=1e-4)
    assert np.allclose(cell["window"][0], x[row:row + 3, col:col + 3]) and cell["top"] == row
    body = client.post("/api/activations/cell", files={"image": ("d.png", encode(image))},
                       data={"model": "mnist-recipe", "layer": layer_index, "channel": channel, "row": row, "col": col}).json()
    assert body["sum"] == pytest.approx(cell["value"], abs=1e-3) and len(body["window"][0]) == 3


def test_a_cell_past_the_map_or_of_a_layer_that_is_no_convolution_is_a_clear_422(client, mnist):
    image = encode(on_canvas(mnist.test.images[0]))

    def ask(**fields):
        return client.post("/api/activations/cell", files={"image": ("d.png", image)},
                           data={"model": "mnist-recipe", "layer": 0, "channel": 0, "row": 0, "col": 0, **fields})
    assert ask().status_code == 200
    for fields, field in [({"row": 26}, "row"), ({"channel": 32}, "channel"), ({"col": 99}, "col"), ({"layer": 1}, "layer"),
                          ({"layer": 2**70}, "layer"), ({"row": -1}, "row"), ({"col": "x"}, "col")]:
        reply = ask(**fields)
        assert reply.status_code == 422 and field in reply.json()["fields"], (fields, reply.json())
    assert "is not a convolution layer; this network's are [0]" in ask(layer=1).json()["message"]
    assert ask(model="nope").status_code == 404
    garbage = client.post("/api/activations/cell", files={"image": ("x.png", b"not an image")},
                          data={"layer": 0, "channel": 0, "row": 0, "col": 0})
    empty = client.post("/api/activations/cell", files={"image": ("x.png", b"")}, data={"layer": 0, "channel": 0, "row": 0, "col": 0})
    blank = client.post("/api/activations/cell", files={"image": ("b.png", encode(Image.new("L", (50, 50), 255)))},
                        data={"layer": 0, "channel": 0, "row": 0, "col": 0})
    assert (garbage.status_code, empty.status_code, blank.status_code) == (415, 400, 422)


def test_a_history_kept_by_an_older_version_is_served_in_the_one_image_form(settings, monkeypatch):
    """Models trained before images had one form keep their filters over time: base64 text with
    `map_shape` / `image_shape` beside it. The route hands them out as the pages read images now."""
    import json

    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.conftest import OWNER

    user = settings.data_dir / "models"
    user.mkdir(exist_ok=True)
    card = json.loads((settings.models_dir / "digits.json").read_text())
    model_id = "old-history-0123456789abcdef0123456789abcdef"
    (user / f"{model_id}.json").write_text(json.dumps({**card, "id": model_id}))
    (user / f"{model_id}.safetensors").write_bytes((settings.models_dir / "digits.safetensors").read_bytes())
    maps = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    image = (np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)
    (user / f"{model_id}.history.json").write_text(json.dumps({
        "snapshots": [{"step": 0, "epoch": 0, "weights": [[[[0.1]]]], "maps": base64.b64encode(maps.tobytes()).decode(),
                       "map_shape": [2, 3, 4]}],
        "image": base64.b64encode(image.tobytes()).decode(), "image_shape": [28, 28]}))
    with TestClient(create_app(settings), headers={"X-Owner-Token": OWNER}) as client:
        got = client.get(f"/api/models/{model_id}/history")
    assert got.status_code == 200, got.text
    snap, shown = got.json()["snapshots"][0], got.json()["image"]
    assert (snap["maps"]["channels"], snap["maps"]["height"], snap["maps"]["width"]) == (2, 3, 4)
    assert np.array_equal(np.frombuffer(base64.b64decode(snap["maps"]["base64"]), np.uint8).reshape(2, 3, 4), maps)
    assert "map_shape" not in snap and "image_shape" not in got.json()
    assert (shown["channels"], shown["height"], shown["width"]) == (1, 28, 28)
    assert np.array_equal(np.frombuffer(base64.b64decode(shown["base64"]), np.uint8).reshape(28, 28), image)


def test_the_slides_pooling_example_and_a_colour_filter_are_offered(client):
    examples = client.get("/api/kernels").json()["examples"]
    pooled = client.post("/api/pool", json={"input": examples["slides_pool_4x4"]["input"], "size": 2}).json()
    assert pooled["output"] == [[0.3, 0.9], [0.0, 0.4]]
    assert [(s["top"], s["left"]) for s in pooled["steps"]] == [(0, 0), (0, 2), (2, 0), (2, 2)]
    colour = examples["colour_3x3x3"]
    assert len(colour["input"]) == len(colour["kernel"]) == 3 and len(colour["kernel"][0]) == 3
    out = client.post("/api/convolve/colour", json=colour).json()
    layer = torch.nn.Conv2d(3, 1, 3).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(colour["kernel"], dtype=torch.float64)[None])
        layer.bias.fill_(colour["bias"])
        expected = layer(torch.tensor(colour["input"], dtype=torch.float64)[None])[0, 0]
    assert np.allclose(out["output"], expected.numpy())
