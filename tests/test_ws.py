import base64

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
    """Frames sent faster than they are read are skipped: the latest frame wins."""
    n = 60
    with client.websocket_connect("/ws/draw") as ws:
        ws.receive_json()
        for i in range(n - 1):
            ws.send_bytes(frames[2 if i % 2 else 3])
        ws.send_bytes(frames[7])
        replies = []
        while not replies or replies[-1]["frame"] < n:
            replies.append(ws.receive_json())
        assert replies[-1]["prediction"] == "7"
        assert len(replies) < n / 2
        assert sum(r["skipped"] for r in replies) == n - len(replies)
