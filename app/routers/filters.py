"""Convolution by hand: convolution and pooling step by step, the kernel table, a kernel applied
to a photo (a trained network's own layers: app.routers.inside)."""
from __future__ import annotations

import json
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from app.deps import SettingsDep, decode_upload
from app.errors import ApiError
from engine import arithmetic, convolution
from engine.imageio import encode
from engine.preprocess import shrink

router = APIRouter(tags=["inside the network"])

MAX_GRID = 64          # the step-by-step grids are for looking at, not for photos
MAX_STEPS_CELLS = 4096
Cell = Annotated[float, Field(allow_inf_nan=False, ge=-1e6, le=1e6)]
Grid = Annotated[list[Annotated[list[Cell], Field(min_length=1, max_length=MAX_GRID)]],
                 Field(min_length=1, max_length=MAX_GRID, description=f"rows of numbers, at most {MAX_GRID}x{MAX_GRID}")]


class ConvolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Grid
    kernel: Annotated[list[Annotated[list[Cell], Field(min_length=1, max_length=11)]], Field(min_length=1, max_length=11)]
    stride: int = Field(1, ge=1, le=10)
    padding: Literal["valid", "same"] | Annotated[int, Field(ge=0, le=10)] = "valid"


class PoolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Grid
    size: int = Field(2, ge=1, le=8)
    stride: int | None = Field(None, ge=1, le=8, description="default: the pool size")


Small = Annotated[list[Annotated[list[Cell], Field(min_length=1, max_length=16)]], Field(min_length=1, max_length=16)]


class ColourConvolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: Annotated[list[Small], Field(min_length=1, max_length=4, description="channels (red, green, blue), each up to 16x16")]
    kernel: Annotated[list[Annotated[list[Annotated[list[Cell], Field(min_length=1, max_length=7)]], Field(min_length=1, max_length=7)]],
                      Field(min_length=1, max_length=4, description="one grid per channel, as many as the input")]
    bias: Cell = 0.0


def _shape_error(fn, *args, **kwargs) -> dict:
    try:
        return fn(*args, **kwargs)
    except convolution.ShapeError as exc:
        raise ApiError(422, "invalid_request", str(exc), {"input": str(exc)}) from exc


def _cells(grid: list[list[float]]) -> int:
    return len(grid) * len(grid[0])


@router.get("/api/kernels")
def kernels() -> dict:
    """The classic kernels and the slides' worked examples."""
    return {"kernels": convolution.KERNELS, "examples": {
        "slides_5x5": {"input": convolution.SLIDES_INPUT, "kernel": convolution.VERTICAL_EDGE},
        "vertical_edge": {"input": convolution.EDGE_INPUT, "kernel": convolution.VERTICAL_EDGE},
        "slides_pool_4x4": {"input": arithmetic.SLIDES_POOL_INPUT, "size": 2, "stride": 2},
        "colour_3x3x3": {"input": arithmetic.COLOUR_INPUT, "kernel": arithmetic.COLOUR_KERNEL,
                         "bias": arithmetic.COLOUR_BIAS}}}


@router.post("/api/convolve")
def convolve(body: ConvolveRequest) -> dict:
    """Cross-correlate (what conv layers compute; the kernel is not flipped): the output grid, the
    padded input, the output-size formula and each position's window, products and sum."""
    return _shape_error(convolution.convolve, body.input, body.kernel, body.stride, body.padding,
                        steps=_cells(body.input) <= MAX_STEPS_CELLS)


@router.post("/api/pool")
def pool(body: PoolRequest) -> dict:
    """Max pooling: the output grid, the formula and each window's position and maximum."""
    return _shape_error(convolution.max_pool, body.input, body.size, body.stride)


@router.post("/api/convolve/colour")
def convolve_colour(body: ColourConvolveRequest) -> dict:
    """One filter of a conv layer on a colour image: a kernel as deep as the image (3x3x3 for red,
    green and blue), each window's products per channel, each channel's sum, their total plus the
    bias: the output, and every step."""
    return _shape_error(arithmetic.convolve_colour, body.input, body.kernel, body.bias)


@router.post("/api/kernels/apply")
def apply_kernel(
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="PNG, JPEG, WebP or GIF")],
    kernel: Annotated[str, Form(description="a name from GET /api/kernels, or a JSON 3x3 list")] = "sharpen",
    mode: Annotated[Literal["grey", "colour"], Form()] = "grey",
) -> dict:
    """A kernel applied to a photo or drawing (shrunk to at most 320 px): before and after in the
    one image form (one grey plane, or red, green and blue planes)."""
    grid = convolution.KERNELS.get(kernel)
    if grid is None:
        try:
            grid = json.loads(kernel)
            convolution.as_grid(grid, "kernel")
        except (ValueError, TypeError) as exc:
            raise ApiError(422, "invalid_request", "kernel must be a preset name or a JSON grid like "
                           "[[0,-1,0],[-1,5,-1],[0,-1,0]]", {"kernel": "not a preset or a grid"}) from exc
        if len(grid) > 11 or len(grid[0]) > 11:
            raise ApiError(422, "invalid_request", "kernel is at most 11x11", {"kernel": "too large"})
    img = shrink(decode_upload(image, settings).convert("RGB"), 320)
    pixels = np.asarray(img.convert("L") if mode == "grey" else img)
    after = convolution.apply_kernel(pixels, grid)
    return {"kernel": grid, "mode": mode, "before": _planes(pixels), "after": _planes(after)}


def _planes(a: np.ndarray) -> dict:
    """0..255 values (H, W) or (H, W, 3) in the image form, channels first."""
    a = np.rint(a).astype(np.uint8)
    return encode(a if a.ndim == 2 else np.moveaxis(a, -1, 0))
