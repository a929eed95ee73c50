"""Classify images: one upload over HTTP, or a live stream of canvas frames over a WebSocket."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from app.deps import FramesDep, PhotosDep, RegistryDep, SettingsDep, blank_image, decode_upload, on_photo_thread
from app.errors import ApiError, refusal_message
from app.frames import FrameReader
from app.serialize import classification_json
from app.serialize import image as image_json
from engine import imagenet
from engine.inference import classify
from engine.refusal import Refusal
from engine.saliency import onto_image, where_it_looked
from engine.stores.store import ModelRegistry, UnknownModel

router = APIRouter(tags=["predict"])
ImageUpload = Annotated[UploadFile, File(description="PNG, JPEG, WebP or GIF")]
ModelChoice = Annotated[str | None, Form(description="model id (default: digits)")]


@router.post("/api/predict", response_class=JSONResponse)
def predict(
    registry: RegistryDep,
    settings: SettingsDep,
    photos: PhotosDep,
    image: ImageUpload,
    model: ModelChoice = None,
    steps: Annotated[bool, Form(description="include the preprocessing steps")] = False,
    min_confidence: Annotated[float | None, Form(ge=0, le=1, description="below this, `sure` is false")] = None,
    groups: Annotated[Literal["cifar10"] | None, Form(description="the photo network only: CIFAR-10's ten classes "
                                                                   "as groups of its ImageNet classes")] = None,
) -> JSONResponse:
    """Classify one image. Returns the labels, their probabilities (same order), the prediction,
    the five best guesses (`top`) and the input the network saw (28x28 floats 0..1; the photo
    network's 3x224x224 in the compact image form)."""
    stored = registry.get(model or settings.default_model)
    result = on_photo_thread(photos, stored, classify, stored, decode_upload(image, settings))
    if result.probabilities is None:
        raise blank_image()
    body = classification_json(result, with_steps=steps, min_confidence=min_confidence)
    if groups is not None:
        if stored.card.task != "imagenet":
            raise ApiError(422, "invalid_request", f"groups=cifar10 needs the ImageNet photo network (model "
                           f"{imagenet.MODEL_ID!r}); {stored.card.id!r} does not know ImageNet's classes.",
                           {"groups": "only with the photo network"})
        body["groups"] = imagenet.group_probabilities(result.probabilities, stored.card.labels)
    # JSONResponse directly: FastAPI's generic encoder would walk the 784 floats one by one
    return JSONResponse(body)


@router.websocket("/ws/draw")
async def draw_socket(ws: WebSocket, settings: SettingsDep, registry: RegistryDep, frames: FramesDep,
                      model: str | None = None, steps: bool = True):
    """Live drawing. Send each canvas frame as a binary message (PNG bytes); receive
    {"type": "prediction", "frame": n, "server_ms", ...} for the latest frame (frames that arrive
    while one is being read are skipped: the latest wins), {"type": "empty"} for a blank canvas,
    or {"type": "error"}. Images in replies are in the one form: {"width", "height", "channels",
    "base64"} of 0..255 bytes, plane after plane; `steps=false` leaves the preparation steps out (cheaper: students' pages). A text
    message {"model": id} switches the model. Frames of every socket are read by one small
    worker process (app/frames.py), so thirty drawers queue briefly there and the event loop keeps
    its own core; `server_ms` is the time from receiving the frame to the reply."""
    await ws.accept()
    drawer = _Drawer(ws, registry, frames, steps)
    await drawer.use_model(model or settings.default_model)
    task = asyncio.create_task(drawer.answer_frames())
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                await drawer.frame(message["bytes"])
            elif message.get("text") is not None:
                await drawer.control(message["text"])
    except WebSocketDisconnect:
        pass
    finally:
        task.cancel()


class _Drawer:
    """One /ws/draw socket: the network it reads with, and its latest frame; one method for each
    message the page sends (a frame, a text command) and the loop that answers the latest frame."""

    def __init__(self, ws: WebSocket, registry: ModelRegistry, frames: FrameReader, steps: bool):
        self.ws, self.registry, self.reader, self.steps = ws, registry, frames, steps
        self.model = None  # the card of the network frames are read with
        self.latest: tuple[int, bytes, float] | None = None  # (frame number, bytes, when received)
        self.frames = 0
        self.wake = asyncio.Event()

    async def use_model(self, model_id: str) -> None:
        try:
            self.model = self.registry.card(model_id)  # the network itself is loaded where frames are read
        except UnknownModel as exc:
            await self.ws.send_json(refusal_message(exc))
            return
        card = self.model
        await self.ws.send_json({"type": "ready", "model": card.id, "labels": card.labels, "task": card.task})

    async def frame(self, data: bytes) -> None:
        """A canvas frame: it becomes the latest (one still waiting is skipped)."""
        if self.model is None:
            await self.ws.send_json(refusal_message(Refusal(
                409, "no_model", "Choose a model first: send {\"model\": \"digits\"}.")))
            return
        self.frames += 1
        self.latest = (self.frames, data, time.perf_counter())
        self.wake.set()

    async def control(self, text: str) -> None:
        try:
            command = json.loads(text)
        except ValueError:
            command = None
        if not isinstance(command, dict) or not isinstance(command.get("model"), str):
            await self.ws.send_json(refusal_message(Refusal(
                422, "bad_message", "Text messages must be JSON like {\"model\": \"digits\"}; "
                "send canvas frames as binary PNG messages.")))
            return
        await self.use_model(command["model"])

    async def answer_frames(self) -> None:
        """Read the latest frame whenever one came, and send its reply."""
        done, last = 0, (None, None, None)  # the last frame read: (bytes, model id, reply)
        while True:
            await self.wake.wait()
            self.wake.clear()
            frame, data, received = self.latest
            model_id = self.model.id
            if (data, model_id) == last[:2]:
                reply = last[2]  # the same drawing again (a pen held still): the same answer, no work
            else:
                reply = await self.reader.read(data, model_id, self.steps)
                last = (data, model_id, reply)
            server_ms = round((time.perf_counter() - received) * 1000, 2)
            await self.ws.send_json({**reply, "frame": frame, "skipped": frame - done - 1, "server_ms": server_ms})
            done = frame


@router.post("/api/saliency")
def saliency_map(
    registry: RegistryDep,
    settings: SettingsDep,
    photos: PhotosDep,
    image: ImageUpload,
    model: ModelChoice = None,
    target: Annotated[int | None, Form(ge=0, description="class index to explain (default: the prediction)")] = None,
) -> JSONResponse:
    """Where the network looked for the class: occlusion sensitivity (how much covering each part
    of the input lowers its probability) for the small networks, Grad-CAM for the ImageNet photo
    network (`method`). `heat` is over the network's input, `overlay` over the (shrunk) image as
    uploaded; both are bytes 0..255 in compact form (255 = mattered most)."""
    stored = registry.get(model or settings.default_model)
    if target is not None and target >= len(stored.card.labels):
        raise ApiError(422, "invalid_request", f"target must be a class index below {len(stored.card.labels)}",
                       {"target": "no such class"})
    result = on_photo_thread(photos, stored, classify, stored, decode_upload(image, settings))
    if result.probabilities is None:
        raise blank_image()
    heat, cls, method = on_photo_thread(photos, stored, where_it_looked, stored, result.prepared.input, target)
    return JSONResponse({"model": stored.card.id, "prediction": result.prediction, "target": cls, "method": method,
                         "target_label": stored.card.labels[cls],
                         "heat": image_json(heat, compact=True),
                         "overlay": image_json(onto_image(heat, result.prepared), compact=True)})
