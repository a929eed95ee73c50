"""Photos through the API: the ImageNet network names everyday photos (top five, "not sure"
below a chosen confidence, Grad-CAM), odd photos get an answer or a clear 4xx, and a project is
taught by transfer learning by default, side by side with a CNN from scratch on the same
held-out photos."""
from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from engine import imagenet
from tests.helpers import encode
from tests.photos import crops, photo
from tests.test_projects import add, jpeg, new_project, wait_done


def predict(client, img_bytes: bytes, name="p.png", **form):
    return client.post("/api/predict", data={"model": "imagenet", **form}, files={"image": (name, img_bytes, "image/png")})


def test_an_everyday_photo_is_named_with_its_top_five(client):
    response = predict(client, encode(photo("coffee.png")), min_confidence="0.5", steps="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["prediction"] == "espresso" and body["sure"] is True and body["model"] == "imagenet"
    assert [g["label"] for g in body["top"]][0] == "espresso" and len(body["top"]) == 5
    probs = [g["probability"] for g in body["top"]]
    assert probs == sorted(probs, reverse=True) and len(body["probabilities"]) == 1000
    assert body["input"]["width"] == 224 and body["input"]["channels"] == 3  # compact, not 150,528 numbers
    assert "centre square" in " ".join(body["steps"]["notes"])


def test_below_the_chosen_confidence_it_says_it_is_not_sure(client):
    """A photo of nothing ImageNet names (gravel) at a demanding threshold."""
    body = predict(client, encode(photo("gravel.png").convert("RGB")), min_confidence="0.9").json()
    assert body["sure"] is False and body["confidence"] < 0.9
    assert "sure" not in predict(client, encode(photo("gravel.png").convert("RGB"))).json()  # only when asked
    bad = predict(client, encode(photo("coffee.png")), min_confidence="1.5")
    assert bad.status_code == 422 and "min_confidence" in bad.text


def test_where_it_looked_is_grad_cam_for_the_photo_network(client):
    response = client.post("/api/saliency", data={"model": "imagenet"},
                           files={"image": ("c.png", encode(photo("chelsea.png")), "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "grad-cam" and body["heat"]["width"] == 224
    assert body["target_label"] in {"tabby", "tiger cat", "Egyptian cat"}
    digits = client.post("/api/saliency", files={"image": ("c.png", encode(_digit_seven()), "image/png")})
    assert digits.json()["method"] == "occlusion"


def _digit_seven() -> Image.Image:
    from tests.helpers import draw_digit
    return draw_digit("7")


def _cmyk_jpeg() -> bytes:
    return encode(photo("coffee.png").convert("CMYK"), "JPEG")


def _sixteen_bit_png() -> bytes:
    a = (np.asarray(photo("camera.png").convert("L"), np.uint16) * 257)
    img = Image.fromarray(a)
    assert img.mode == "I;16"
    return encode(img)


def _animated_gif() -> bytes:
    frames = [photo("coffee.png").resize((160, 120)), photo("chelsea.png").resize((160, 120))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _transparent_png() -> bytes:
    rgba = photo("coffee.png").convert("RGBA")
    alpha = Image.new("L", rgba.size, 0)
    alpha.paste(255, (100, 100, 400, 300))  # only the cup's middle shows
    rgba.putalpha(alpha)
    return encode(rgba)


@pytest.mark.parametrize("make", [
    lambda: encode(Image.new("RGB", (1, 1), (255, 0, 0))),
    lambda: encode(Image.new("RGB", (20000, 50), (30, 90, 200))),
    _cmyk_jpeg, _sixteen_bit_png, _animated_gif, _transparent_png,
    lambda: b"GIF89a not really",
    lambda: encode(photo("coffee.png"))[:500],  # cut short
], ids=["1x1", "panorama-20000x50", "cmyk-jpeg", "16-bit-png", "animated-gif", "transparent-png", "fake-gif", "truncated"])
def test_odd_photos_get_an_answer_or_a_clear_4xx(client, make):
    for path in ("/api/predict", "/api/saliency"):
        response = client.post(path, data={"model": "imagenet"}, files={"image": ("odd", make(), "application/octet-stream")})
        assert response.status_code in (200, 400, 413, 415, 422), (path, response.status_code, response.text[:200])
        body = response.json()
        if response.status_code == 200:
            assert body["model"] == "imagenet"
        else:
            assert body["error"] and body["message"]


def test_the_classify_page_starts_with_the_photo_network(client):
    page = client.get("/classify").text
    assert '"defaultModel": "imagenet"' in page
    assert '"defaultModel": "digits"' in client.get("/draw").text
    listed = {m["id"]: m for m in client.get("/api/models").json()["models"]}
    assert listed["imagenet"]["input_shape"] == [3, 224, 224] and listed["imagenet"]["task"] == "imagenet"


def test_a_drawing_socket_or_class_session_on_the_photo_network_is_a_clear_error(client):
    with client.websocket_connect("/ws/draw?model=imagenet") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(encode(_digit_seven()))
        reply = ws.receive_json()
        assert reply["type"] in ("error", "prediction"), reply
    session = client.post("/api/sessions", json={"model": "imagenet"})
    assert session.status_code == 422 and "28x28" in session.json()["message"]


# --- teaching by transfer learning ------------------------------------------------------------

def cat_or_coffee(client, per_class: int, seed: int = 0) -> dict:
    p = new_project(client, "Cat or coffee?", ["cat", "coffee"])
    for c, name in zip(p["classes"], ("chelsea.png", "coffee.png")):
        assert add(client, p["id"], c["id"], crops(name, per_class, seed=seed + len(name))).status_code == 201
    return p


def test_a_project_learns_by_transfer_from_a_handful_of_photos_by_default(client, settings):
    p = cat_or_coffee(client, 6)  # five a class to learn from, one held out
    folder = settings.data_dir / "projects" / p["id"]
    assert len(list(folder.glob("*.imagenet.f32"))) == 12  # computed as the photos were added
    response = client.post(f"/api/projects/{p['id']}/train", json={})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["method"] == "transfer" and body["status"] == "done" and body["id"] is None
    assert body["train_photos"] == 10 and body["held_out_photos"] == 2
    result = body["project"]["result"]
    assert result["method"] == "transfer" and result["accuracy"] >= 0.75
    assert result["trained_parameters"] == 1280 * 2 + 2 and result["frozen_parameters"] == 4_652_008 - (1280 * 1000 + 1000)
    card = client.get(f"/api/models/{result['model_id']}").json()
    assert card["base"] == "imagenet" and card["preprocess"] == "imagenet" and card["task"] == "project"
    folder = settings.data_dir / "projects" / p["id"]
    assert len(list(folder.glob("*.imagenet.f32"))) == 12  # each photo's features, kept beside it

    unseen = [jpeg(img) for img in crops("chelsea.png", 3, seed=90) + crops("coffee.png", 3, seed=91)]
    guesses = [client.post(f"/api/projects/{p['id']}/predict", files={"image": ("u.jpg", u, "image/jpeg")}).json()
               for u in unseen]
    assert [g["prediction"] for g in guesses] == ["cat"] * 3 + ["coffee"] * 3
    looked = client.post("/api/saliency", data={"model": result["model_id"]},
                         files={"image": ("u.jpg", unseen[0], "image/jpeg")}).json()
    assert looked["method"] == "grad-cam" and looked["target_label"] == "cat"

    # the same held-out photos, trained from scratch: both scores kept side by side
    job = client.post(f"/api/projects/{p['id']}/train", json={"method": "scratch", "epochs": 5})
    assert job.status_code == 201 and job.json()["method"] == "scratch"
    assert wait_done(client, job.json()["id"])["status"] == "done"
    after = client.get(f"/api/projects/{p['id']}").json()["result"]
    assert after["method"] == "scratch" and set(after["methods"]) == {"transfer", "scratch"}
    assert after["methods"]["transfer"]["held_out"] == after["methods"]["scratch"]["held_out"] == result["held_out"]
    assert after["methods"]["transfer"]["accuracy"] == result["accuracy"]
    assert client.get(f"/api/models/{result['model_id']}").status_code == 404  # replaced: deleted

    for f in folder.glob("*.imagenet.f32"):  # features lost (or made by an older version): computed again
        f.unlink()
    again = client.post(f"/api/projects/{p['id']}/train", json={}).json()["project"]["result"]
    assert again["accuracy"] == result["accuracy"] and len(list(folder.glob("*.imagenet.f32"))) == 12
    with TestClient(create_app(settings), headers=client.headers) as restarted:
        model_id = restarted.get(f"/api/projects/{p['id']}").json()["model_id"]
        reread = restarted.post(f"/api/projects/{p['id']}/predict", files={"image": ("u.jpg", unseen[5], "image/jpeg")})
        assert reread.status_code == 200 and reread.json()["prediction"] == "coffee"
        assert restarted.delete(f"/api/projects/{p['id']}").status_code == 204
        assert restarted.get(f"/api/models/{model_id}").status_code == 404
    assert not folder.exists()


def test_transfer_options_that_belong_to_scratch_are_refused(client):
    p = cat_or_coffee(client, 4)
    response = client.post(f"/api/projects/{p['id']}/train", json={"epochs": 10})
    assert response.status_code == 422 and "method" in response.json()["message"]
    assert response.json()["fields"] == {"epochs": "only with method scratch"}
    assert client.post(f"/api/projects/{p['id']}/train", json={"method": "magic"}).status_code == 422


def test_deleting_a_photo_deletes_its_features(client, settings):
    p = cat_or_coffee(client, 4)
    assert client.post(f"/api/projects/{p['id']}/train", json={}).status_code == 201
    folder = settings.data_dir / "projects" / p["id"]
    sample = client.get(f"/api/projects/{p['id']}").json()["classes"][0]["samples"][0]
    assert (folder / f"{sample}.imagenet.f32").exists()
    assert client.delete(f"/api/projects/{p['id']}/samples/{sample}").status_code == 204
    assert not (folder / f"{sample}.imagenet.f32").exists()
    doomed = client.get(f"/api/projects/{p['id']}").json()["classes"][1]
    assert client.delete(f"/api/projects/{p['id']}/classes/{doomed['id']}").status_code == 204
    assert not any((folder / f"{s}.imagenet.f32").exists() for s in doomed["samples"])


def test_without_the_photo_network_transfer_is_a_503_that_says_how_to_install_it(settings, tmp_path):
    bare = tmp_path / "models"
    bare.mkdir()
    for f in (settings.models_dir).glob("digits.*"):
        (bare / f.name).write_bytes(f.read_bytes())
    with TestClient(create_app(settings.model_copy(update={"models_dir": bare})),
                    headers={"X-Owner-Token": "f" * 32}) as c:
        p = cat_or_coffee(c, 4)
        response = c.post(f"/api/projects/{p['id']}/train", json={})
        assert response.status_code == 503 and "setup.sh" in response.json()["message"]
        assert '"defaultModel": "digits"' in c.get("/classify").text
        assert imagenet.MODEL_ID not in {m["id"] for m in c.get("/api/models").json()["models"]}


def test_the_learning_curve_compares_both_ways_on_the_same_held_out_photos(client):
    p = cat_or_coffee(client, 8)  # 6 to learn from and 2 held out a class: 2 and 5 can be measured
    before = client.get(f"/api/projects/{p['id']}").json()
    curve = client.post(f"/api/projects/{p['id']}/curve")
    assert curve.status_code == 200, curve.text
    body = curve.json()
    assert body["sizes"] == [2, 5, 10, 20] and len(body["held_out"]) == 4 and body["per_class"] == [6, 6]
    assert body["transfer"][2:] == [None, None] and body["scratch"][2:] == [None, None]
    assert all(0 <= v <= 1 for v in body["transfer"][:2] + body["scratch"][:2])
    assert body["transfer"][1] >= 0.75, body
    assert client.get(f"/api/projects/{p['id']}").json()["model_id"] == before["model_id"]  # nothing replaced
    other = client.post(f"/api/projects/{p['id']}/curve", headers={"X-Owner-Token": "e" * 32})
    assert other.status_code == 403


def test_inside_the_photo_network_stage_by_stage(client):
    shot = encode(photo("chelsea.png"))
    response = client.post("/api/photonet/stages", files={"image": ("c.png", shot, "image/png")},
                           data={"top": "4", "part": "3", "channel": "39"})
    assert response.status_code == 200, response.text
    body = response.json()
    names = [p["name"] for p in body["parts"]]
    assert names == ["stem", *[f"stage {i}" for i in range(1, 8)], "head"]
    shapes = [p["shape"] for p in body["parts"]]
    assert shapes[0] == [32, 112, 112] and shapes[3] == [40, 28, 28] and shapes[-1] == [1280, 7, 7]
    assert sum(p["weights"] for p in body["parts"]) == 4_652_008 - 1_281_000  # all but the 1000-class layer
    for p in body["parts"]:
        assert len(p["channels"]) == 4 and p["maps"]["channels"] == 4 and p["maps"]["width"] == p["shape"][2]
    assert body["picked"]["name"] == "stage 3" and body["picked"]["channel"] == 39
    stem = np.array(body["stem_filters"])
    assert stem.shape == (32, 3, 3, 3)
    for bad, field in [({"part": "9", "channel": "0"}, "part"), ({"part": "3", "channel": "40"}, "channel"),
                       ({"part": "3"}, "channel"), ({"top": "0"}, "top")]:
        answer = client.post("/api/photonet/stages", files={"image": ("c.png", shot, "image/png")}, data=bad)
        assert answer.status_code == 422 and field in answer.text, (bad, answer.text)


def test_the_lesson_numbers_and_cifar_10_groups(client):
    lesson = client.get("/api/transfer?classes=3").json()
    assert lesson["frozen"] == 3_371_008 and lesson["trained"] == 1280 * 3 + 3
    assert lesson["replaced"]["weights"] == 1_281_000 and lesson["new_layer"]["output"] == [3]
    assert [s["name"] for s in lesson["stages"]][:3] == ["input", "stem", "stage"]
    groups = {g["label"]: g["members"] for g in lesson["cifar10"]}
    assert len(groups) == 10 and groups["cat"] == ["tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"]
    assert client.get("/api/transfer?classes=1").status_code == 422
    read = client.post("/api/predict", data={"model": "imagenet", "groups": "cifar10"},
                       files={"image": ("c.png", encode(photo("chelsea.png")), "image/png")}).json()
    assert read["groups"][0]["label"] == "cat" and read["groups"][0]["probability"] > 0.5
    assert read["groups"][-1]["label"] == "other" and abs(sum(g["probability"] for g in read["groups"]) - 1) < 1e-6
    wrong = client.post("/api/predict", data={"model": "digits", "groups": "cifar10"},
                        files={"image": ("c.png", encode(_digit_seven()), "image/png")})
    assert wrong.status_code == 422 and wrong.json()["fields"] == {"groups": "only with the photo network"}


def test_a_project_trained_before_transfer_learning_keeps_its_score_beside_the_new_one(client):
    """A result recorded by an older version (no method, no methods): it counts as from scratch."""
    p = cat_or_coffee(client, 5)
    store = client.app.state.services.projects
    old = {"model_id": "gone", "job": "j", "accuracy": 0.5, "per_class": [0.5, 0.5], "confusion": [[1, 1], [1, 1]],
           "labels": ["cat", "coffee"], "held_out": [1, 2], "photos": 10, "seconds": 1.0, "steps": 40,
           "status": "done", "mistakes": {}}
    store.set_model(p["id"], "gone", old)
    assert client.get(f"/api/projects/{p['id']}").json()["result"]["accuracy"] == 0.5  # it still opens
    result = client.post(f"/api/projects/{p['id']}/train", json={}).json()["project"]["result"]
    assert result["methods"]["scratch"]["accuracy"] == 0.5 and result["methods"]["transfer"]["accuracy"] == result["accuracy"]
