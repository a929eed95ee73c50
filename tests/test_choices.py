"""The names a student picks are declared once (engine.choices) and mean the same everywhere: each
activation gives the same values from every engine entry point that offers it (the neuron page's
curves, one neuron, the split network, the lab's layers and the numpy reader), with torch's own
functions as the oracle; the optimizers are torch's; the job statuses the pages and Redis use are
the engine's."""
from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from app.routers.descent import SplitRequest
from engine import choices, descent, lite, models, neuron, splitdata
from engine.inference import program_of
from engine.stores.store import ModelCard, StoredModel
from engine.training import redisjobs
from engine.training.train import TrainConfig
from engine.training.train import make_optimizer as training_optimizer

# name -> torch's function with every constant written out: the oracle. leaky ReLU's 0.1 is the
# slope the lessons' pages draw (and the neuron page's numbers: leaky_relu(-2) = -0.2).
ORACLE = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.1),
    "elu": lambda z: F.elu(z, 1.0),
    "maxout": lambda z: torch.maximum(z, 0.25 * z),
}
SPLIT = choices.SPLIT_ACTIVATIONS  # what the split exercise offers (app/routers/descent.py, the descent page)
Z = torch.linspace(-5, 5, 201, dtype=torch.float64)


def test_the_table_is_the_declared_one():
    assert set(ORACLE) == set(choices.ACTIVATIONS) == set(neuron.ACTIVATIONS)
    assert set(choices.LAYER_ACTIVATIONS) == set(ORACLE) - {"maxout"}
    assert choices.LEAKY_SLOPE == 0.1
    assert set(choices.ACTIVATION_LABELS) == set(choices.ACTIVATIONS)
    assert set(SPLIT) <= set(choices.LAYER_ACTIVATIONS) and choices.DEFAULT_LAYER_ACTIVATION in choices.LAYER_ACTIVATIONS


def test_the_split_route_takes_the_split_exercises_activations():
    assert typing.get_args(SplitRequest.model_fields["activation"].annotation) == SPLIT
    assert SplitRequest.model_fields["activation"].default in SPLIT


@pytest.mark.parametrize("name", ORACLE)
def test_the_neuron_pages_curves_and_one_neuron(name):
    curves = neuron.curves()
    assert np.allclose(curves[name]["y"], ORACLE[name](Z).numpy())
    for z in (-2.0, -0.5, 0.7, 3.0):
        assert neuron.value_and_slope(name, z)[0] == pytest.approx(ORACLE[name](torch.tensor(z, dtype=torch.float64)).item())


@pytest.mark.parametrize("name", SPLIT)
def test_the_split_network(name):
    net = splitdata.build([1], name)
    with torch.no_grad():  # the hidden neuron reads x alone: its output is g(x)
        net[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        net[0].bias.zero_()
        out = net[:2](torch.stack([Z.float(), torch.zeros(len(Z))], 1)).squeeze(1)
    assert torch.allclose(out, ORACLE[name](Z.float()), atol=1e-6)


def _lab_model(name: str) -> StoredModel:
    net = models.build([{"type": "activation", "fn": name}], 2, (1, 1, len(Z)))
    card = ModelCard(id="t", name="t", task="digits", dataset="mnist", labels=["0", "1"], architecture="custom",
                     preprocess="digit", input_shape=[1, 1, len(Z)])
    return StoredModel(card, net.eval())


@pytest.mark.parametrize("name", choices.LAYER_ACTIVATIONS)
def test_the_labs_layers_and_the_numpy_reader(name):
    model = _lab_model(name)
    x = Z.float().reshape(1, 1, 1, -1)
    (kind, first), *_ = models.layer_outputs(model.module, x)
    assert torch.allclose(first.flatten(), ORACLE[name](Z.float()), atol=1e-6), kind
    program = program_of(model)
    program.ops = program.ops[:1]  # the activation alone
    assert program.ops[0][:2] == ("fn", name)
    read = lite.forward(program, x.numpy())
    assert np.allclose(read.ravel(), ORACLE[name](Z.float()).numpy(), atol=1e-6)


def test_an_unknown_name_is_refused_everywhere():
    for call in (lambda: choices.layer("swish"), lambda: choices.layer("maxout"),
                 lambda: choices.activate("swish", Z), lambda: splitdata.build([2], "swish"),
                 lambda: neuron.value_and_slope("swish", 1.0)):
        with pytest.raises(ValueError, match="choose one of"):
            call()
    with pytest.raises(models.ArchitectureError, match="unknown activation"):
        models.build([{"type": "activation", "fn": "maxout"}], 2)


# --- optimizers ---------------------------------------------------------------------------------

def _three_steps(make) -> torch.Tensor:
    """Where three steps on L = |p|² from (1, -2) take p, with `make(module)`'s optimizer."""
    module = torch.nn.ParameterList([torch.nn.Parameter(torch.tensor([1.0, -2.0]))])
    opt = make(module)
    for _ in range(3):
        opt.zero_grad()
        (module[0] ** 2).sum().backward()
        opt.step()
    return module[0].detach()


ORACLE_OPTIMIZERS = {
    "sgd": lambda m: torch.optim.SGD(m.parameters(), lr=0.1),
    "momentum": lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9),
    "adam": lambda m: torch.optim.Adam(m.parameters(), lr=0.1),
}


@pytest.mark.parametrize("name", ORACLE_OPTIMIZERS)
def test_the_descent_lab_and_training_make_torchs_optimizers(name):
    want = _three_steps(ORACLE_OPTIMIZERS[name])
    assert torch.equal(_three_steps(lambda m: descent.make_optimizer(name, list(m.parameters()), 0.1, 0.9)), want)
    config = TrainConfig(optimizer=name, learning_rate=0.1, momentum=0.9, weight_decay=0.0)
    assert torch.equal(_three_steps(lambda m: training_optimizer(m, config)), want)


def test_every_page_offers_the_same_optimizers():
    assert set(ORACLE_OPTIMIZERS) == set(choices.OPTIMIZERS) == set(descent.OPTIMIZERS)
    with pytest.raises(ValueError, match="choose one of"):
        choices.make_optimizer("rmsprop", [torch.zeros(1, requires_grad=True)], 0.1)


# --- job statuses ---------------------------------------------------------------------------------

def test_the_redis_script_knows_the_final_statuses():
    lua = re.search(r"local final = \{(.*)\}", redisjobs.APPEND).group(1)
    assert [entry.split("=")[0].strip() for entry in lua.split(",")] == list(choices.FINAL)


def test_the_train_page_gets_the_final_statuses_from_its_config(client):
    html = client.get("/train").text
    config = json.loads(re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert config["finalStatuses"] == list(choices.FINAL)
    assert not set(choices.FINAL) & set(choices.ACTIVE)


# --- the pages offer the declared names -----------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _options(html: str, select: str) -> list[tuple[str, str]]:
    """(value, visible text) of each option of the <select> whose attributes include `select`."""
    menu = re.search(rf"<select {select}[^>]*>(.*?)</select>", html, re.S).group(1)
    return [(value, text.strip()) for value, text in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', menu)]


def test_the_descent_page_offers_the_split_activations_and_the_optimizers(client):
    html = client.get("/descent").text
    assert _options(html, 'id="activation"') == [(name, choices.ACTIVATION_LABELS[name]) for name in SPLIT]
    assert ("relu", "ReLU") in _options(html, 'id="activation"')  # the lessons' spelling
    assert [value for value, _ in _options(html, 'id="optimizer"')] == list(choices.OPTIMIZERS)
    spanish = client.get("/descent?lang=es").text  # the labels still go through the translation
    assert [value for value, _ in _options(spanish, 'id="activation"')] == list(SPLIT)


def test_the_train_page_offers_every_layer_activation(client):
    html = client.get("/train").text
    assert _options(html, 'id="new-activation"') == [*((name, name) for name in choices.LAYER_ACTIVATIONS), ("none", "none")]
    assert re.search(rf'<option value="{choices.DEFAULT_LAYER_ACTIVATION}" selected>', html)


def test_no_template_or_script_lists_the_activations_by_hand():
    names = "|".join(choices.ACTIVATIONS)
    for path in [*ROOT.glob("templates/*.html"), *ROOT.glob("static/js/*.js")]:
        text = path.read_text()
        assert not re.search(rf'<option value="(?:{names})"', text), f"{path.name} lists an activation by hand"
        assert not re.search(rf'new Option\([^)]*["\'](?:{names})["\']', text), f"{path.name} lists an activation by hand"


# --- the pages that follow a job compare its status with the server's names ----------------------

JOB_SCRIPTS = ("train.js", "teach-train.js")


@pytest.mark.parametrize("path", ["/train", "/teach"])
def test_the_job_pages_get_the_statuses_from_their_config(client, path):
    html = client.get(path).text
    config = json.loads(re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert config["jobStatus"] == choices.JOB_STATUSES
    assert sorted(config["jobStatus"].values()) == sorted(choices.ACTIVE + choices.FINAL)
    assert config["finalStatuses"] == list(choices.FINAL)


@pytest.mark.parametrize("name", JOB_SCRIPTS)
def test_the_job_scripts_write_no_status_by_hand(name):
    source = (ROOT / "static" / "js" / name).read_text()
    statuses = "|".join(choices.ACTIVE + choices.FINAL)
    # an event's type ("done") is the socket's word, not a status
    written = re.findall(rf'(?<!type === )["\'](?:{statuses})["\']', source)
    assert written == [], f"{name} writes the statuses {written} by hand: take them from config.jobStatus"
    used = re.search(r"const \{([^}]*)\} = (?:config|pageConfig\(\))\.jobStatus;", source)
    assert used, f"{name} does not take the statuses from its page config"
    assert {n.strip() for n in used.group(1).split(",")} <= set(choices.JOB_STATUSES)


# --- the optimizers' menus and defaults come from engine.choices -----------------------------------

def test_the_train_page_offers_the_optimizers_with_the_labs_labels(client):
    html = client.get("/train").text
    assert _options(html, 'name="optimizer"') == [(name, choices.LAB_OPTIMIZER_LABELS[name]) for name in choices.OPTIMIZERS]
    assert ("momentum", "Momentum (0.9)") in _options(html, 'name="optimizer"')  # the lab's momentum is fixed
    assert re.search(rf'<option value="{choices.DEFAULT_LAB_OPTIMIZER}" selected>', html)
    assert set(choices.LAB_OPTIMIZER_LABELS) == set(choices.OPTIMIZER_LABELS) == set(choices.OPTIMIZERS)
    assert TrainConfig().optimizer == choices.DEFAULT_LAB_OPTIMIZER and TrainConfig().momentum == 0.9


def test_the_descent_page_gets_its_defaults_from_its_config(client):
    html = client.get("/descent").text
    config = json.loads(re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert config["defaultOptimizer"] == choices.DEFAULT_OPTIMIZER in choices.OPTIMIZERS
    assert config["defaultActivation"] == choices.DEFAULT_SPLIT_ACTIVATION in SPLIT
    assert SplitRequest.model_fields["activation"].default == choices.DEFAULT_SPLIT_ACTIVATION
    source = (ROOT / "static" / "js" / "descent.js").read_text()
    optimizers, activations = "|".join(choices.OPTIMIZERS), "|".join(choices.ACTIVATIONS)
    assert not re.search(rf'(?:optimizer|activation): ["\'](?:{optimizers}|{activations})["\']', source), \
        "descent.js writes a default by hand: take it from its page config"


def test_no_template_lists_the_optimizers_by_hand():
    names = "|".join(choices.OPTIMIZERS)
    for path in ROOT.glob("templates/*.html"):
        assert not re.search(rf'<option value="(?:{names})"', path.read_text()), f"{path.name} lists an optimizer by hand"


def test_a_transfer_taught_project_says_done_with_the_engines_word():
    assert choices.DONE == "done" and choices.DONE in choices.FINAL
    for name in ("app/teaching.py", "app/routers/projects.py"):
        assert not re.search(r'"status": ["\'](?:' + "|".join(choices.ACTIVE + choices.FINAL) + r')["\']',
                             (ROOT / name).read_text()), f"{name} writes a job status by hand"


# --- a page reads and writes its address through url-state.js only --------------------------------

# chrome.js keeps the lesson's own parameters (projector, hide, note, lang) for every page, and
# url-state.js keeps them beside a page's state; students-address.js copies the whole address into
# a link without reading it. Every other module is a page's: its state goes through url-state.js.
ADDRESS_OWNERS = {"url-state.js", "chrome.js", "students-address.js"}
READS_ADDRESS = re.compile(r"location\.search|URLSearchParams\(\s*(?:window\.)?location\b|location\.href")
WRITES_ADDRESS = re.compile(r"history\.(?:replace|push)State|\blocation\.search\s*="
                            r'|import \{[^}]*\b(?:setParam|setQuery)\b[^}]*\} from "\./chrome\.js"')


@pytest.mark.parametrize("path", sorted(p.name for p in (ROOT / "static" / "js").glob("*.js") if p.name not in ADDRESS_OWNERS))
def test_no_page_script_reads_or_writes_its_address_by_hand(path):
    source = (ROOT / "static" / "js" / path).read_text()
    assert not READS_ADDRESS.search(source), f"{path} reads the address by hand: use url-state.js's readURL"
    assert not WRITES_ADDRESS.search(source), f"{path} writes the address by hand: use url-state.js's writeURL"


def test_an_api_query_built_with_url_search_params_is_not_an_address():
    api_query = 'const q = new URLSearchParams({ samples: $("samples").value });'
    assert not READS_ADDRESS.search(api_query)
    assert READS_ADDRESS.search("const params = new URLSearchParams(location.search);")
    assert READS_ADDRESS.search('new URLSearchParams(window.location.search).get("code")')
