"""Why CNNs, in numbers: the slides' arithmetic (lessons 002 and 004) counted by engine.arithmetic
and served by /api/parameters, with torch's own layers as the oracle; max pooling of the slides'
4x4 example; a colour convolution as one 3x3x3 kernel plus a bias."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine import arithmetic


def dense(units):
    return {"type": "dense", "units": units}


def conv(filters, kernel=3):
    return {"type": "conv", "filters": filters, "kernel": kernel}


# --- the engine, against torch ---------------------------------------------------------------------

@pytest.mark.parametrize("shape, units", [((3, 256, 256), 128), ((3, 64, 64), 128), ((3, 1000, 1000), 1000),
                                          ((1, 28, 28), 16), ((4, 7, 5), 3)])
def test_a_dense_layer_counts_as_nn_linear(shape, units):
    counted = arithmetic.count(list(shape), [dense(units)])
    with torch.device("meta"):  # 3 billion weights: counted, never allocated
        layer = nn.Linear(math.prod(shape), units)
    assert counted["inputs"] == math.prod(shape)
    assert counted["weights"] == layer.weight.numel() and counted["biases"] == layer.bias.numel()
    assert counted["params"] == sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize("shape, filters, kernel", [((3, 64, 64), 32, 3), ((3, 1000, 1000), 32, 3), ((1, 28, 28), 6, 5)])
def test_a_conv_layer_counts_as_nn_conv2d(shape, filters, kernel):
    counted = arithmetic.count(list(shape), [conv(filters, kernel)])
    layer = nn.Conv2d(shape[0], filters, kernel)
    assert (counted["weights"], counted["biases"]) == (layer.weight.numel(), layer.bias.numel())
    small = layer(torch.zeros(1, shape[0], 40, 30)).shape[2:]  # the output size: n - k + 1 on each side
    assert counted["layers"][0]["output"] == [filters, shape[1] - kernel + 1, shape[2] - kernel + 1]
    assert list(small) == [40 - kernel + 1, 30 - kernel + 1]


def test_the_output_layer_is_added_for_classes():
    counted = arithmetic.count([3, 64, 64], [dense(128)], classes=2)
    assert [r["label"] for r in counted["layers"]][-1] == "Output 2"
    assert counted["params"] == 12288 * 128 + 128 + 128 * 2 + 2


def test_the_slides_network_3_4_5_3_2():
    table = arithmetic.network([3, 4, 5, 3, 2])
    assert [[r["layer"], r["inputs"], r["nodes"], r["weights"], r["biases"]] for r in table["rows"]] == \
        arithmetic.SLIDES_NETWORK["rows"]
    assert (table["weights"], table["biases"]) == (53, 14)
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5), nn.Linear(5, 3), nn.Linear(3, 2))
    assert sum(m.weight.numel() for m in net) == 53 and sum(m.bias.numel() for m in net) == 14


@pytest.mark.parametrize("shape", [[5, 10, 10], [3, 4097, 10], [0, 3, 3], [3, -1, 4], [3, 2.5, 4], [True, 3, 3],
                                   [3, 3], [10 ** 9]])
def test_impossible_shapes_are_refused(shape):
    with pytest.raises(arithmetic.Refusal) as refused:
        arithmetic.count(shape, [dense(2)])
    assert refused.value.status == 422 and refused.value.field == "input"


def test_the_slides_pooling_example_against_max_pool2d():
    from engine import convolution
    pooled = convolution.max_pool(arithmetic.SLIDES_POOL_INPUT, 2, 2)
    expected = F.max_pool2d(torch.tensor(arithmetic.SLIDES_POOL_INPUT)[None, None], 2)[0, 0]
    assert np.allclose(pooled["output"], expected.numpy())
    assert pooled["output"] == [[0.3, 0.9], [0.0, 0.4]]  # the slide's answer


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_colour_convolution_is_one_conv2d_filter(seed):
    rng = np.random.default_rng(seed)
    image, kernel, bias = rng.normal(size=(3, 6, 5)), rng.normal(size=(3, 3, 3)), float(rng.normal())
    out = arithmetic.convolve_colour(image.tolist(), kernel.tolist(), bias)
    layer = nn.Conv2d(3, 1, 3).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(kernel)[None])
        layer.bias.fill_(bias)
        expected = layer(torch.tensor(image)[None])[0, 0]
    assert np.allclose(out["output"], expected.numpy())
    for step in out["steps"]:  # each channel's sum, added together with the bias, is the output
        assert sum(ch["sum"] for ch in step["channels"]) + step["bias"] == pytest.approx(step["sum"])
        assert step["sum"] == pytest.approx(out["output"][step["row"]][step["col"]])
    first = out["steps"][0]["channels"][1]["products"]
    assert np.allclose(first, image[1, :3, :3] * kernel[1])


def test_the_colour_example():
    out = arithmetic.convolve_colour(arithmetic.COLOUR_INPUT, arithmetic.COLOUR_KERNEL, arithmetic.COLOUR_BIAS)
    step = out["steps"][0]
    # red: 3-3 + 1-1 + 2-5 = -3; green: the centre 2; blue: 5+5+5 - (2+3+4)... of the blue plane: 15 - 0
    assert [ch["sum"] for ch in step["channels"]] == [-3, 2, 15] and step["sum"] == -3 + 2 + 15 + 1


def test_a_colour_kernel_must_match_the_channels():
    with pytest.raises(arithmetic.ShapeError, match="channels"):
        arithmetic.convolve_colour(arithmetic.COLOUR_INPUT, arithmetic.COLOUR_KERNEL[:2])


# --- the API, with the slides' numbers -------------------------------------------------------------

def test_the_slides_inputs_and_weights_over_the_api(client):
    ask = lambda body: client.post("/api/parameters", json=body)  # noqa: E731
    assert ask({"input": [3, 256, 256]}).json()["inputs"] == 196_608
    santa = ask({"input": [3, 64, 64], "layers": [dense(128)]}).json()
    assert santa["inputs"] == 12_288 and santa["weights"] == 1_572_864 and santa["params"] == 1_572_992  # ~1.5 M
    big = ask({"input": [3, 1000, 1000], "layers": [dense(1000)]}).json()
    assert big["weights"] == 3_000_000_000 and big["params"] == 3_000_001_000  # the slide's "3 Billion"
    beside = ask({"input": [3, 1000, 1000], "layers": [conv(32)]}).json()
    assert (beside["weights"], beside["biases"]) == (3 * 3 * 3 * 32, 32)
    examples = client.get("/api/parameters").json()
    assert [e["input"] for e in examples["examples"]] == [[3, 256, 256], [3, 64, 64], [3, 1000, 1000]]
    assert examples["network"]["weights"] == 53 and examples["network"]["biases"] == 14


def test_the_3_4_5_3_2_table_over_the_api(client):
    table = client.post("/api/parameters/network", json={"sizes": [3, 4, 5, 3, 2]}).json()
    assert (table["weights"], table["biases"]) == (53, 14)
    assert [r["weights"] for r in table["rows"]] == [12, 20, 15, 6]
    layers = client.post("/api/parameters", json={"input": [3], "layers": [dense(4), dense(5), dense(3)],
                                                  "classes": 2}).json()
    assert (layers["weights"], layers["biases"]) == (53, 14)


@pytest.mark.parametrize("body, field", [
    ({"input": [3, 100000, 100000]}, "input"), ({"input": [4096 * 4096 * 5]}, "input"),
    ({"input": [3, -4, 4]}, "input"), ({"input": [3, 4.5, 4]}, "input"), ({"input": [3, "64", 64]}, "input"),
    ({"input": [5, 64, 64]}, "input"), ({"input": [3, 64, 64], "classes": 10001}, "classes"),
    ({"input": [3, 64, 64], "classes": 2.5}, "classes"), ({"input": [3, 64, 64], "layers": [dense(-1)]}, "architecture"),
    ({"input": [3, 4, 4], "layers": [conv(8, 5)]}, "architecture"), ({"input": [3, 64, 64], "size": 1}, "size"),
])
def test_bad_inputs_are_refused_with_json(client, body, field):
    response = client.post("/api/parameters", json=body)
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "invalid_request" and answer["message"]
    assert any(key.startswith(field) for key in answer["fields"]), answer


def test_bad_network_sizes_are_refused(client):
    for sizes in ([3], [3, 0, 2], [3, 4.5, 2], [3, 5000, 2]):
        response = client.post("/api/parameters/network", json={"sizes": sizes})
        assert response.status_code == 422 and "sizes" in str(response.json()["fields"])


def test_the_pooling_and_colour_examples_over_the_api(client):
    examples = client.get("/api/kernels").json()["examples"]
    pool = examples["slides_pool_4x4"]
    assert client.post("/api/pool", json={"input": pool["input"], "size": 2}).json()["output"] == [[0.3, 0.9], [0.0, 0.4]]
    colour = examples["colour_3x3x3"]
    out = client.post("/api/convolve/colour", json=colour).json()
    assert out["output"] == arithmetic.convolve_colour(colour["input"], colour["kernel"], colour["bias"])["output"]
    assert len(out["steps"]) == 9 and len(out["steps"][0]["channels"]) == 3
    bad = client.post("/api/convolve/colour", json={**colour, "kernel": colour["kernel"][:2]})
    assert bad.status_code == 422 and bad.json()["fields"]
    too_big = client.post("/api/convolve/colour", json={**colour, "input": [[[1] * 17] * 17] * 3})
    assert too_big.status_code == 422
