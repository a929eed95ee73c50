"""Reading live frames and class drawings into what a page shows, with a network compiled to numpy
(engine.lite): this runs in the frame reader's worker process (app/frames.py), which imports
neither torch nor the web framework (so it stays small), and must not import a router.

The reader's protocol is the messages below: the server sends one (UseModels, ReadFrames or
ReadDrawing), and the `Reader` answers it with its handler for that message (None, FramesRead or
DrawingRead), or raises. app/frames.py carries them to the reader's process and back.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from app.serialize import classification_json
from engine import imageio
from engine.lite import Program, classify_prepared
from engine.preprocess import prepare
from engine.refusal import Refusal

log = logging.getLogger("neuronlab")


@dataclass(frozen=True)
class Limits:
    """What an uploaded frame may be (from the server's settings)."""
    max_upload_bytes: int
    max_image_pixels: int
    max_decoded_bytes: int

    @classmethod
    def of(cls, settings) -> Limits:
        return cls(settings.max_upload_bytes, settings.max_image_pixels, settings.max_decoded_bytes)


def read_drawing(data: bytes, program: Program, limits: Limits) -> tuple[np.ndarray | None, list[float] | None]:
    """(the 28x28 the network read or None, probabilities or None) for a class-session drawing;
    raises engine.imageio.ImageError for a bad upload."""
    img = imageio.decode(data, limits.max_image_pixels, limits.max_decoded_bytes)
    result = classify_prepared(program, [prepare(img, program.preprocess)])[0]
    return result.prepared.input, result.probabilities


def replies_for(frames: list[tuple[bytes, Program, bool]], limits: Limits) -> list[dict]:
    """The reply to each live frame (bytes, its network, whether to include the preparation steps):
    each is decoded and prepared on its own, then the frames of one network share a forward pass.
    A bad frame gets an error reply; it never costs the others theirs."""
    replies: list[dict | None] = [None] * len(frames)
    ready: dict[str, list] = {}  # model id -> [(index, program, prepared, steps)]
    for i, (data, program, steps) in enumerate(frames):
        if len(data) > limits.max_upload_bytes:
            replies[i] = _error(Refusal(413, "image_too_large", "The frame is larger than the upload limit."))
            continue
        try:
            img = imageio.decode(data, limits.max_image_pixels, limits.max_decoded_bytes)
            ready.setdefault(program.model_id, []).append((i, program, prepare(img, program.preprocess), steps))
        except imageio.ImageError as exc:  # a Refusal: its own code (image_corrupt, ...) and message
            replies[i] = _error(exc)
        except Exception:  # never let one bad frame end the stream
            log.exception("draw frame failed")
            replies[i] = unreadable()
    for group in ready.values():
        try:
            results = classify_prepared(group[0][1], [prepared for _, _, prepared, _ in group])
        except Exception:
            log.exception("draw frames failed")
            results = [None] * len(group)
        for (i, _, _, steps), result in zip(group, results):
            replies[i] = unreadable() if result is None else {
                "type": "empty" if result.probabilities is None else "prediction",
                **classification_json(result, with_steps=steps, compact=True)}
    return replies


def unreadable() -> dict:
    return _error(Refusal(500, "internal", "This frame could not be read; keep drawing."))


def _error(refusal: Refusal) -> dict:
    """A frame's error reply: {"type": "error", "error": code, "message", "fields"?}."""
    return {"type": "error", **refusal.body()}


# --- the reader's protocol -----------------------------------------------------------------------

@dataclass(frozen=True)
class Frame:
    """One live frame: its bytes (a canvas PNG), the network to read it with (a model id), and
    whether its reply shows the preparation steps."""
    data: bytes
    model_id: str
    steps: bool


@dataclass(frozen=True)
class UseModels:
    """Hold these networks, compiled by the server (engine.inference.program_of), by model id;
    `forget`: drop every network held before. The server sends a network once, before the first
    message that needs it. Answer: None."""
    programs: dict[str, Program]
    forget: bool = False


@dataclass(frozen=True)
class ReadFrames:
    """Read a batch of live frames, each on its own, those of one network in one forward pass.
    Answer: FramesRead."""
    frames: list[Frame]


@dataclass(frozen=True)
class FramesRead:
    """The socket's reply to each frame, in the batch's order: a prediction, "empty" (a blank
    canvas) or an error (a bad frame, or one whose network the reader was never sent)."""
    replies: list[dict]


@dataclass(frozen=True)
class ReadDrawing:
    """Read a class-session drawing. Answer: DrawingRead; a bad upload raises
    engine.imageio.ImageError, a network the reader was never sent KeyError."""
    data: bytes
    model_id: str


@dataclass(frozen=True)
class DrawingRead:
    """The 28x28 the network read (None for a blank drawing) and its probabilities (None: blank)."""
    seen: np.ndarray | None
    probabilities: list[float] | None


Message = UseModels | ReadFrames | ReadDrawing


@dataclass
class Reader:
    """The frame reader's side of the protocol: the upload limits, the networks it was sent, and
    one handler for each message."""
    limits: Limits
    programs: dict[str, Program] = field(default_factory=dict)

    def answer(self, message: Message):
        match message:
            case UseModels():
                return self.use_models(message)
            case ReadFrames():
                return self.read_frames(message)
            case ReadDrawing():
                return self.read_drawing(message)
        raise TypeError(f"the frame reader has no answer to {type(message).__name__}")

    def use_models(self, message: UseModels) -> None:
        if message.forget:
            self.programs.clear()
        self.programs.update(message.programs)

    def read_frames(self, message: ReadFrames) -> FramesRead:
        known = [(i, (frame.data, self.programs[frame.model_id], frame.steps))
                 for i, frame in enumerate(message.frames) if frame.model_id in self.programs]
        replies = [unreadable()] * len(message.frames)  # a network the server could not compile was never sent
        for (i, _), reply in zip(known, replies_for([frame for _, frame in known], self.limits)):
            replies[i] = reply
        return FramesRead(replies)

    def read_drawing(self, message: ReadDrawing) -> DrawingRead:
        return DrawingRead(*read_drawing(message.data, self.programs[message.model_id], self.limits))
