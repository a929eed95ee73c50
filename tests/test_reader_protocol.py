"""The frame reader's protocol (app/reading.py): named messages, each answered by the Reader's own
handler, that cross to the reader's process pickled; a frame's error reply is a refusal's body."""
from __future__ import annotations

import pickle

import pytest

from app.reading import DrawingRead, Frame, FramesRead, Limits, ReadDrawing, Reader, ReadFrames, UseModels
from engine import imageio
from engine.inference import program_of
from engine.stores.store import ModelRegistry
from tests.helpers import encode, on_canvas


@pytest.fixture
def reader_and_seven(settings, mnist):
    program = program_of(ModelRegistry([settings.models_dir]).get("digits"))
    seven = encode(on_canvas(mnist.test.images[int((mnist.test.labels == 7).nonzero()[0][0])]))
    return Reader(Limits.of(settings)), program, seven


def test_each_message_gets_its_answer(reader_and_seven):
    reader, program, seven = reader_and_seven
    assert reader.answer(UseModels({"digits": program})) is None
    read = reader.answer(ReadFrames([Frame(seven, "digits", False), Frame(seven, "never-sent", False),
                                     Frame(b"\x89PNG\r\n\x1a\n not really", "digits", True)]))
    assert isinstance(read, FramesRead)
    ok, unknown, bad = read.replies
    assert ok["type"] == "prediction" and ok["prediction"] == "7"
    assert unknown == {"type": "error", "error": "internal", "message": "This frame could not be read; keep drawing."}
    assert bad["type"] == "error" and bad["error"] == "image_corrupt" and bad["message"]
    drawing = reader.answer(ReadDrawing(seven, "digits"))
    assert isinstance(drawing, DrawingRead) and drawing.seen.shape == (28, 28) and len(drawing.probabilities) == 10
    with pytest.raises(imageio.ImageError):
        reader.answer(ReadDrawing(b"", "digits"))
    with pytest.raises(KeyError):
        reader.answer(ReadDrawing(seven, "never-sent"))


def test_forget_drops_the_networks_held(reader_and_seven):
    reader, program, seven = reader_and_seven
    reader.answer(UseModels({"digits": program}))
    reader.answer(UseModels({}, forget=True))
    assert reader.answer(ReadFrames([Frame(seven, "digits", False)])).replies[0]["error"] == "internal"


def test_a_frame_over_the_upload_limit_is_refused_alone(settings, reader_and_seven):
    _, program, seven = reader_and_seven
    reader = Reader(Limits(len(seven) - 1, settings.max_image_pixels, settings.max_decoded_bytes))
    reader.answer(UseModels({"digits": program}))
    (reply,) = reader.answer(ReadFrames([Frame(seven, "digits", False)])).replies
    assert reply == {"type": "error", "error": "image_too_large", "message": "The frame is larger than the upload limit."}


def test_the_messages_cross_a_pipe_whole_and_a_stranger_is_refused(reader_and_seven):
    reader, program, seven = reader_and_seven
    for message in (UseModels({"digits": program}, True), ReadFrames([Frame(seven, "digits", True)]), ReadDrawing(seven, "digits")):
        assert type(pickle.loads(pickle.dumps(message))) is type(message)
    with pytest.raises(TypeError, match="no answer to"):
        reader.answer(("a function", "its arguments"))
