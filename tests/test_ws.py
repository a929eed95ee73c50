import base64

import numpy as np
import pytest
from PIL import Image

from tests.helpers import encode, on_canvas, stroke_image


@pytest.fixture(scope="module")
def frames(mnist):
    labels = mnist.test.labels
    pick = lambda d: encode(on_canvas(mnist.test.images[int((labels == d).nonzero()[0][0])]))
    return {d: pick(d) for d in (2, 3, 7)}


def test_ready_then_predictions(client, frames):
    with client.websocket_connect("/ws/draw") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["model"] == "digits" and len(ready["labels"]) == 10
        ws.send_bytes(frames[3])
        reply = ws.receive_json()
        assert reply["type"] == "prediction" and reply["prediction"] == "3" and reply["frame"] == 1
        seen = base64.b64decode(reply["input"]["base64"])
        assert (reply["input"]["width"], reply["input"]["height"], len(seen)) == (28, 28, 784)
        assert max(seen) > 200 and reply["steps"]["fitted"]["height"] == 20
        ws.send_bytes(encode(stroke_image([(140, 40), (140, 240)])))
        assert ws.receive_json()["prediction"] == "1"


def test_blank_canvas_is_empty_not_a_guess(client):
    with client.websocket_connect("/ws/draw") as ws:
        ws.receive_json()
        ws.send_bytes(encode(Image.new("RGB", (280, 280), "white")))
        reply = ws.receive_json()
        assert reply["type"] == "empty" and reply["prediction"] is None


def test_bad_frames_get_errors_and_the_stream_goes_on(client, frames):
    with client.websocket_connect("/ws/draw") as ws:
        ws.receive_json()
        for junk in (b"", b"not an image", b"%PDF-1.4", frames[2][:100]):
            ws.send_bytes(junk)
            reply = ws.receive_json()
            assert reply["type"] == "error" and reply["message"]
        ws.send_text("hello")
        assert ws.receive_json()["error"] == "bad_message"
        ws.send_bytes(frames[2])
        assert ws.receive_json()["prediction"] == "2"


def test_switching_models(client, frames):
    with client.websocket_connect("/ws/draw?model=mnist-recipe") as ws:
        assert ws.receive_json()["model"] == "mnist-recipe"
        ws.send_text('{"model": "nope"}')
        assert ws.receive_json()["error"] == "unknown_model"
        ws.send_text('{"model": "fashion"}')
        ready = ws.receive_json()
        assert ready["model"] == "fashion" and ready["labels"][0] == "T-shirt/top"
        ws.send_bytes(frames[7])
        assert ws.receive_json()["model"] == "fashion"


def test_unknown_model_in_url_then_no_frames_until_one_is_chosen(client, frames):
    with client.websocket_connect("/ws/draw?model=nope") as ws:
        assert ws.receive_json()["error"] == "unknown_model"
        ws.send_bytes(frames[7])
        assert ws.receive_json()["error"] == "no_model"
        ws.send_text('{"model": "digits"}')
        assert ws.receive_json()["type"] == "ready"


def test_a_fast_drawer_builds_no_backlog(client, frames):
    """Frames sent while one is being read are skipped: the latest frame wins. The reader is held
    on the first frame until every frame has been sent (so no speed of this machine changes what
    is asked): then exactly two replies come, the first frame's and the last's."""
    import asyncio
    import threading
    n, sent, reader = 60, threading.Event(), client.app.state.services.frames
    real_read = reader.read

    async def held_read(*args, **kwargs):
        await asyncio.to_thread(sent.wait, 30)
        return await real_read(*args, **kwargs)
    reader.read = held_read
    try:
        with client.websocket_connect("/ws/draw") as ws:
            ws.receive_json()
            for i in range(n - 1):
                ws.send_bytes(frames[2 if i % 2 else 3])
            ws.send_bytes(frames[7])
            ws.send_text('{"model": "digits"}')  # answered only once every frame before it was received
            assert ws.receive_json()["type"] == "ready"
            sent.set()
            replies = []
            while not replies or replies[-1]["frame"] < n:
                replies.append(ws.receive_json())
    finally:
        reader.read = real_read
    assert [r["frame"] for r in replies] == [1, n] and replies[-1]["prediction"] == "7"
    assert replies[-1]["skipped"] == n - 2


def test_frames_from_many_drawers_are_read_in_batches_with_the_answers_of_one_at_a_time(settings, frames):
    """Frames that wait together go to the reader in one trip and one forward pass (numpy, in the
    reader); each gets the answer torch gives for it alone."""
    import asyncio

    from app.frames import FrameReader
    from engine import imageio
    from engine.inference import classify
    from engine.stores.store import ModelRegistry
    registry = ModelRegistry([settings.models_dir])
    alone = {d: classify(registry.get("digits"), imageio.decode(frames[d], 10**7)) for d in frames}
    bad = b"\x89PNG not really"

    async def classroom():
        reader = FrameReader(settings, registry)
        order = [2, 3, 7] * 10
        replies = await asyncio.gather(*[reader.read(frames[d], "digits", False) for d in order],
                                       reader.read(bad, "digits", False))
        reader.close()
        return order, replies, reader
    order, replies, reader = asyncio.run(classroom())
    for d, reply in zip(order, replies):
        assert reply["prediction"] == alone[d].prediction == str(d)
        assert reply["probabilities"] == pytest.approx(alone[d].probabilities, abs=1e-5)
        seen = np.frombuffer(base64.b64decode(reply["input"]["base64"]), np.uint8).reshape(28, 28)
        assert np.abs(seen.astype(int) - np.rint(alone[d].prepared.input * 255)).max() <= 1
    assert replies[-1]["type"] == "error"  # a bad frame in the batch costs only itself
    assert reader.frames == 31 and reader.batches <= 3, (reader.frames, reader.batches)


def test_the_same_frame_again_gets_the_same_answer_without_being_read_again(client, frames):
    reader = client.app.state.services.frames
    with client.websocket_connect("/ws/draw?steps=false") as ws:
        ws.receive_json()
        ws.send_bytes(frames[7])
        first = ws.receive_json()
        before = reader.frames
        ws.send_bytes(frames[7])  # the pen held still
        again = ws.receive_json()
        assert reader.frames == before and again["frame"] == first["frame"] + 1
        assert {k: again[k] for k in ("prediction", "probabilities", "input")} == {
            k: first[k] for k in ("prediction", "probabilities", "input")}
        ws.send_bytes(frames[2])
        assert ws.receive_json()["prediction"] == "2" and reader.frames == before + 1


def test_a_frame_reader_killed_mid_class_is_restarted_and_sent_its_networks_again(settings, frames):
    """kill -9 of the reader process: the next frame starts a new one, which is sent the network
    again (it has none), and a class drawing is read too."""
    import asyncio
    import os
    import signal

    from app.frames import FrameReader
    from engine.stores.store import ModelRegistry
    real = settings.model_copy(update={"inference_processes": 1})

    async def lesson():
        reader = FrameReader(real, ModelRegistry([real.models_dir]))
        try:
            before = await reader.read(frames[3], "digits", False)
            for pid in [worker.process.pid for worker in reader.workers]:
                os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.5)
            after = await reader.read(frames[7], "digits", False)
            seen, probabilities = await reader.drawing(frames[2], "digits")
            return before, after, seen, probabilities
        finally:
            reader.close()
    before, after, seen, probabilities = asyncio.run(lesson())
    assert before["prediction"] == "3" and after["prediction"] == "7"
    assert seen.shape == (28, 28) and int(np.argmax(probabilities)) == 2


def test_a_bad_class_drawing_in_the_reader_process_is_a_clear_error_and_the_reader_goes_on(settings, frames):
    """The reader's own process raises ImageError for a corrupt upload: it must come back as that
    error (the router turns it into a 4xx), not kill the channel to the worker."""
    import asyncio

    from app.frames import FrameReader
    from engine import imageio
    from engine.stores.store import ModelRegistry
    real = settings.model_copy(update={"inference_processes": 1})

    async def lesson():
        reader = FrameReader(real, ModelRegistry([real.models_dir]))
        try:
            with pytest.raises(imageio.ImageError) as bad:
                await reader.drawing(b"\x89PNG\r\n\x1a\n not really", "digits")
            pid = reader.workers[0].process.pid
            after = await reader.read(frames[7], "digits", False)
            return bad.value, after, pid == reader.workers[0].process.pid
        finally:
            reader.close()
    error, after, same_worker = asyncio.run(lesson())
    assert error.kind == "corrupt" and after["prediction"] == "7" and same_worker
