"""Inside a trained network: every layer's output for one input, one feature-map cell worked out
from its inputs, and test images to look at. Record once, views only read: the page draws what
the server computed and never redoes a convolution. And why CNNs: the inputs, weights and biases
of any layer list for any input shape, counted (engine.arithmetic)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from app.deps import PhotosDep, RegistryDep, SettingsDep, blank_image, decode_upload
from app.errors import ApiError
from app.serialize import cell_json, image, layers_json
from engine import arithmetic, datasets, imagenet
from engine.activations import activations, explain_cell, photo_stages
from engine.imageio import diverging, encode
from engine.preprocess import Prepared, prepare
from engine.stores.store import StoredModel

router = APIRouter(tags=["inside the network"])
Upload = Annotated[UploadFile, File(description="PNG, JPEG, WebP or GIF")]
Index = Annotated[int, Form(ge=0, le=4096)]


def _prepared(stored: StoredModel, upload: UploadFile, settings) -> Prepared:
    prepared = prepare(decode_upload(upload, settings), stored.card.preprocess)
    if prepared.empty:
        raise blank_image()
    return prepared


@router.post("/api/activations")
def layer_activations(registry: RegistryDep, settings: SettingsDep, image_file: Annotated[UploadFile, File(
        alias="image", description="PNG, JPEG, WebP or GIF")], model: Annotated[str | None, Form()] = None) -> dict:
    """Every layer's output for one image, in order: feature maps as bytes on a diverging scale
    (128 = 0; multiply by scale / 127.5 after subtracting 128), dense outputs as numbers; `input`
    is the image the network read, in the compact image form."""
    stored = registry.get(model or settings.default_model)
    prepared = _prepared(stored, image_file, settings)
    layers = activations(stored, prepared.input)
    probs = layers[-1]["probabilities"]
    return {"model": stored.card.id, "labels": stored.card.labels, "input": image(prepared.input),
            "layers": layers_json(layers), "prediction": stored.card.labels[int(np.argmax(probs))]}


@router.post("/api/activations/cell")
def explain(registry: RegistryDep, settings: SettingsDep, image_file: Annotated[UploadFile, File(
        alias="image", description="PNG, JPEG, WebP or GIF")], layer: Index, channel: Index, row: Index, col: Index,
        model: Annotated[str | None, Form()] = None) -> dict:
    """Where one cell of a convolution layer's feature map comes from: the window of the layer's
    input it covers (`top`, `left`: its first row and column, negative over the padding), the
    filter's weights and bias, each product, their sum, and the value the network computed."""
    stored = registry.get(model or settings.default_model)
    prepared = _prepared(stored, image_file, settings)
    try:
        return cell_json(explain_cell(stored, prepared.input, layer, channel, row, col))
    except ValueError as exc:
        field = str(exc).split()[0] if str(exc).split()[0] in ("channel", "row", "col") else "layer"
        raise ApiError(422, "invalid_request", str(exc), {field: str(exc)}) from exc


@lru_cache(maxsize=2)
def _test_split(name: str, data_dir: Path) -> datasets.Split:
    return datasets.load_test(name, data_dir)


@router.get("/api/samples")
def samples(settings: SettingsDep, dataset: Literal["mnist", "fashion"] = "mnist",
            n: Annotated[int, Field(ge=1, le=50)] = 10,
            seed: Annotated[int, Field(ge=0, le=2**32 - 1, description="same seed, same images")] = 0) -> dict:
    """Test images to look inside the network with: 28x28 images (the one image form) and their labels."""
    try:
        split = _test_split(dataset, settings.data_dir)
    except datasets.DatasetUnavailable as exc:
        raise ApiError(503, "dataset_unavailable", str(exc)) from exc
    idx = np.random.default_rng(seed).choice(len(split), min(n, 50), replace=False)
    return {"dataset": dataset, "labels": split.labels[idx].tolist(), "images": [encode(split.images[i]) for i in idx]}


@router.post("/api/photonet/stages")
def photo_network_stages(registry: RegistryDep, settings: SettingsDep, photos: PhotosDep, image_file: Annotated[UploadFile, File(
        alias="image", description="PNG, JPEG, WebP or GIF")], top: Annotated[int, Form(ge=1, le=32)] = 8,
        part: Annotated[int | None, Form(ge=0, le=64)] = None, channel: Annotated[int | None, Form(ge=0, le=4096)] = None) -> dict:
    """Inside the ImageNet photo network for one photo: the stem and each of its seven stages and
    head, with output shape, weights and the `top` most active channels' maps (diverging bytes,
    as /api/activations gives them); the stem's 32 colour 3x3 filters; with `part` and `channel`,
    that one map too (`picked`)."""
    if imagenet.MODEL_ID not in registry:
        raise ApiError(503, "no_photo_network", "The ImageNet photo network is not installed on this server: "
                       "run scripts/setup.sh.")
    stored = registry.get(imagenet.MODEL_ID)
    if (part is None) != (channel is None):
        raise ApiError(422, "invalid_request", "Send part and channel together (the map to show), or neither.",
                       {"part" if part is None else "channel": "needed with the other"})
    prepared = _prepared(stored, image_file, settings)
    try:
        found = photos(photo_stages, stored, prepared.input, top, None if part is None else (part, channel))
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc), {"part" if "part" in str(exc) else "channel": str(exc)}) from exc
    parts = [{**p, "maps": diverging(p["maps"])} for p in found["parts"]]
    picked = found["picked"] and {**found["picked"], "maps": diverging(found["picked"]["maps"])}
    return {"input": image(prepared.input), "parts": parts, "picked": picked, "stem_filters": found["stem_filters"]}



class ParametersRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: list[Annotated[int, Field(strict=True, ge=1, le=arithmetic.MAX_FEATURES)]] = Field(
        min_length=1, max_length=3, description="[channels, height, width] (up to 4x4096x4096) or [numbers]")
    layers: list[dict[str, Any]] = Field(default_factory=list, max_length=40,
                                         description="layer specs as /api/architectures/describe takes them")
    classes: Annotated[int, Field(strict=True, ge=1, le=arithmetic.MAX_CLASSES)] | None = Field(
        None, description="add the output layer, one unit per class")


class NetworkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sizes: list[Annotated[int, Field(strict=True, ge=1, le=4096)]] = Field(
        min_length=2, max_length=12, description="layer sizes, inputs first, outputs last: [3, 4, 5, 3, 2]")


@router.get("/api/parameters")
def parameter_examples() -> dict:
    """The slides' rows for "why CNNs" (an image into a first dense layer, and what each slide
    says), the conv layer shown beside them, the slides' 3-4-5-3-2 table, and the limits."""
    return {"examples": arithmetic.WHY_CNNS, "conv": arithmetic.CONV_BESIDE, "network": arithmetic.SLIDES_NETWORK,
            "limits": {"side": arithmetic.MAX_SIDE, "channels": arithmetic.MAX_CHANNELS,
                       "classes": arithmetic.MAX_CLASSES}}


@router.post("/api/parameters")
def count_parameters(body: ParametersRequest) -> dict:
    """How many numbers an input of any shape is, and each layer's inputs, output shape, weights,
    biases and multiply-adds (counted: nothing is allocated), with the totals."""
    return arithmetic.count(body.input, body.layers, body.classes)


@router.post("/api/parameters/network")
def count_network(body: NetworkRequest) -> dict:
    """A dense network by its layer sizes (the slides' 3-4-5-3-2): each layer's inputs, nodes,
    weights and biases, and the totals."""
    return arithmetic.network(body.sizes)
