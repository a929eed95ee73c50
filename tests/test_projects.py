"""Teach your own classes: the project store, its API, training on the project's photos, and
persistence across a restart."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Column, MetaData, Table, Text, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import Double

from app.main import create_app
from engine.preprocess import prepare_photo
from engine.stores import projects
from engine.stores.db import StoreError
from engine.stores.projects import PROJECTS, ProjectStore
from engine.stores.sessions import SessionStore
from tests.helpers import encode, object_photo


def jpeg(img: Image.Image) -> bytes:
    return encode(img, "JPEG", quality=88)


def files(photos: list[Image.Image]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (f"p{i}.jpg", jpeg(p), "image/jpeg")) for i, p in enumerate(photos)]


def add(client, project_id, class_id, photos, **form):
    return client.post(f"/api/projects/{project_id}/samples", files=files(photos),
                       data={"class_id": str(class_id), **form})


def new_project(client, name="Ball or box", classes=("ball", "box")):
    response = client.post("/api/projects", json={"name": name, "classes": list(classes)})
    assert response.status_code == 201, response.text
    return response.json()


def project_with_photos(client, per_class: int, seed: int) -> dict:
    """A ball-or-box project with `per_class` photos in each class."""
    p = new_project(client)
    rng = np.random.default_rng(seed)
    for kind, c in enumerate(p["classes"]):
        assert add(client, p["id"], c["id"], [object_photo(kind, rng) for _ in range(per_class)]).status_code == 201
    return p


def wait_done(client, job_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = client.get(f"/api/train/{job_id}").json()
        if body["status"] in ("done", "stopped", "diverged", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {body}")


# --- the engine -----------------------------------------------------------------------------

def test_photo_preparation_keeps_colour_and_the_centre_square():
    img = Image.new("RGB", (240, 160), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 40, 160))  # a blue band outside the centre square
    p = prepare_photo(img)
    assert p.input.shape == (3, 32, 32) and p.bbox == (40, 0, 200, 160)
    assert np.allclose(p.input.reshape(3, -1).min(1), [1, 0, 0], atol=0.01)  # all red: the band was cut
    assert p.cropped.shape == (160, 160) and p.fitted.shape == (32, 32)


def test_store_survives_reopening_and_keeps_names_as_typed(tmp_path):
    store = ProjectStore(tmp_path)
    p = store.create("  Santa   or not ", ["<b>Santa</b>", "not Santa"])
    sample = store.add_sample(p["id"], p["classes"][0]["id"], object_photo(0, np.random.default_rng(0)))
    again = ProjectStore(tmp_path).get(p["id"])
    assert again["name"] == "Santa or not"
    assert [c["name"] for c in again["classes"]] == ["<b>Santa</b>", "not Santa"]
    assert again["classes"][0]["samples"] == [sample["id"]]
    kept = store.sample_path(p["id"], sample["id"])
    with Image.open(kept) as img:
        assert img.format == "JPEG" and max(img.size) <= projects.STORED_SIZE


@pytest.mark.parametrize("name, code", [("", "invalid_name"), ("   ", "invalid_name"), ("x" * 41, "invalid_name"),
                                        ("tab\tand\x00nul", "invalid_name"), (42, "invalid_name")])
def test_bad_names_are_refused(tmp_path, name, code):
    with pytest.raises(StoreError) as err:
        ProjectStore(tmp_path).create(name)
    assert err.value.code == code and err.value.status == 422


def test_held_out_photos_are_a_fifth_of_each_class(tmp_path):
    store = ProjectStore(tmp_path)
    p = store.create("p", ["a", "b"])
    rng = np.random.default_rng(1)
    for c, n in zip(p["classes"], (10, 5)):
        for _ in range(n):
            store.add_sample(p["id"], c["id"], object_photo(0, rng))
    data, held_out = store.training_set(p["id"])
    assert data.train.images.shape == (12, 3, 32, 32) and data.train.images.dtype == np.uint8
    assert sorted(data.test.labels.tolist()) == [0, 0, 1] and len(held_out) == 3
    assert set(held_out) <= set(p_id for c in store.get(p["id"])["classes"] for p_id in c["samples"])
    assert store.training_set(p["id"])[1] == held_out  # the same photos each time


# --- the API: bad input -------------------------------------------------------------------

def test_bad_requests_get_clear_messages(client):
    p = new_project(client)
    pid, ball = p["id"], p["classes"][0]["id"]
    photo = object_photo(0, np.random.default_rng(0))
    no_class = client.post(f"/api/projects/{pid}/samples", files=files([photo]))
    assert no_class.status_code == 422 and no_class.json()["error"] == "no_class"
    assert "class_id" in no_class.json()["fields"]
    wrong_class = add(client, pid, 99999, [photo])
    assert wrong_class.status_code == 404 and "ball" in wrong_class.json()["message"]
    not_image = client.post(f"/api/projects/{pid}/samples", data={"class_id": str(ball)},
                            files=[("images", ("a.jpg", jpeg(photo), "image/jpeg")),
                                   ("images", ("notes.txt", b"hello, not a photo", "text/plain"))])
    assert not_image.status_code == 415 and "notes.txt" in not_image.json()["message"]
    assert client.get(f"/api/projects/{pid}").json()["classes"][0]["count"] == 0  # none was added
    assert client.post("/api/projects", json={"name": ""}).json()["error"] == "invalid_name"
    dup = client.post(f"/api/projects/{pid}/classes", json={"name": "BALL"})
    assert dup.status_code == 409 and dup.json()["error"] == "duplicate_class"
    empty = client.post(f"/api/projects/{pid}/train", json={})
    assert empty.status_code == 422 and empty.json()["error"] == "too_few_samples"
    assert "'ball' has 0" in empty.json()["message"]
    one_class = new_project(client, "solo", ["only"])
    assert client.post(f"/api/projects/{one_class['id']}/train", json={}).json()["error"] == "too_few_classes"
    assert client.post(f"/api/projects/{pid}/train", json={"method": "scratch", "epochs": 0}).status_code == 422
    assert client.post(f"/api/projects/{pid}/train", json={"learning_rate": "fast"}).status_code == 422
    untrained = client.post(f"/api/projects/{pid}/predict", files={"image": ("a.jpg", jpeg(photo), "image/jpeg")})
    assert untrained.status_code == 409 and untrained.json()["error"] == "not_trained"
    for path in ("/api/projects/nothere1", "/api/projects/../etc", f"/api/projects/{pid}/samples/5.jpg"):
        response = client.get(path)
        assert response.status_code == 404 and "message" in response.json(), path


def test_markup_in_names_is_data(client):
    p = new_project(client, "<script>alert(1)</script>", ["<img src=x onerror=alert(1)>", "b"])
    listed = client.get("/api/projects").json()["projects"]
    assert listed[0]["name"] == "<script>alert(1)</script>"
    assert client.get(f"/api/projects/{p['id']}").json()["classes"][0]["name"].startswith("<img")


def test_class_and_sample_deletion(client, settings):
    p = new_project(client)
    pid, ball = p["id"], p["classes"][0]["id"]
    rng = np.random.default_rng(3)
    ids = [s["id"] for s in add(client, pid, ball, [object_photo(0, rng) for _ in range(3)]).json()["samples"]]
    image = client.get(f"/api/projects/{pid}/samples/{ids[0]}.jpg")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert client.delete(f"/api/projects/{pid}/samples/{ids[0]}").status_code == 204
    assert client.get(f"/api/projects/{pid}").json()["classes"][0]["samples"] == ids[1:]
    assert client.delete(f"/api/projects/{pid}/classes/{ball}").status_code == 204
    assert not (settings.data_dir / "projects" / pid / f"{ids[1]}.jpg").exists()
    assert [c["name"] for c in client.get(f"/api/projects/{pid}").json()["classes"]] == ["box"]


# --- training, prediction, restart, delete ------------------------------------------------

def test_two_distinct_classes_train_to_high_held_out_accuracy_and_survive_a_restart(client, settings):
    p = new_project(client)
    pid = p["id"]
    rng = np.random.default_rng(7)
    for kind, c in enumerate(p["classes"]):
        for _ in range(2):  # several photos per request, as the page sends a webcam burst
            assert add(client, pid, c["id"], [object_photo(kind, rng) for _ in range(10)],
                       source="webcam").status_code == 201
    job = client.post(f"/api/projects/{pid}/train", json={"method": "scratch", "epochs": 30})
    assert job.status_code == 201, job.text
    assert job.json()["held_out_photos"] == 8 and job.json()["train_photos"] == 32
    busy = client.post(f"/api/projects/{pid}/train", json={})
    assert busy.status_code == 409
    assert wait_done(client, job.json()["id"])["status"] == "done"
    result = client.get(f"/api/projects/{pid}").json()["result"]
    assert result["accuracy"] >= 0.875 and min(result["per_class"]) >= 0.75, result
    assert np.array(result["confusion"]).sum() == 8 and result["labels"] == ["ball", "box"]
    card = client.get(f"/api/models/{result['model_id']}").json()
    assert card["task"] == "project" and card["input_shape"] == [3, 32, 32] and card["preprocess"] == "photo"

    fresh = [object_photo(k, np.random.default_rng(100 + k)) for k in (0, 1)]
    guesses = [client.post(f"/api/projects/{pid}/predict", files={"image": ("x.jpg", jpeg(f), "image/jpeg")}).json()
               for f in fresh]
    assert [g["prediction"] for g in guesses] == ["ball", "box"]
    assert np.array(guesses[0]["input"]).shape == (3, 32, 32)
    saliency = client.post("/api/saliency", data={"model": result["model_id"]},
                           files={"image": ("x.jpg", jpeg(fresh[1]), "image/jpeg")})
    assert saliency.status_code == 200 and saliency.json()["heat"]  # where it looked, on a photo too

    with TestClient(create_app(settings), headers=client.headers) as again:  # a restart: everything is still there
        kept = again.get(f"/api/projects/{pid}").json()
        assert kept["model_id"] == result["model_id"] and sum(c["count"] for c in kept["classes"]) == 40
        reread = again.post(f"/api/projects/{pid}/predict", files={"image": ("x.jpg", jpeg(fresh[0]), "image/jpeg")})
        assert reread.json()["probabilities"] == guesses[0]["probabilities"]
        assert again.delete(f"/api/projects/{pid}").status_code == 204
        assert again.get(f"/api/models/{result['model_id']}").status_code == 404
        assert again.get(f"/api/projects/{pid}").status_code == 404
    assert not (settings.data_dir / "projects" / pid).exists()
    assert not list((settings.data_dir / "models").glob(f"{result['model_id']}.*"))


def test_live_socket_and_activations_read_a_project_model(client, settings):
    """A project model works wherever a model id is accepted (compact colour input on the socket)."""
    p = project_with_photos(client, 5, seed=11)
    rng = np.random.default_rng(12)
    job = client.post(f"/api/projects/{p['id']}/train", json={"method": "scratch", "epochs": 2}).json()
    assert wait_done(client, job["id"])["status"] == "done"
    model_id = client.get(f"/api/projects/{p['id']}").json()["model_id"]
    photo = jpeg(object_photo(0, rng))
    with client.websocket_connect(f"/ws/draw?model={model_id}") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(photo)
        reply = ws.receive_json()
        assert reply["type"] == "prediction" and reply["input"]["channels"] == 3, reply
    layers = client.post("/api/activations", data={"model": model_id}, files={"image": ("a.jpg", photo, "image/jpeg")})
    assert layers.status_code == 200 and layers.json()["layers"][0]["shape"] == [16, 32, 32]
    script = client.get(f"/api/models/{model_id}/export").text
    assert "torch.zeros(1, 3, 32, 32)" in script


def test_limits_keep_a_project_small(tmp_path):
    store = ProjectStore(tmp_path, projects.Limits(projects=1, classes=2, samples=2))
    p = store.create("p", ["a", "b"])
    with pytest.raises(StoreError) as err:
        store.add_class(p["id"], "c")
    assert err.value.status == 409 and "at most 2 classes" in str(err.value)
    rng = np.random.default_rng(0)
    for _ in range(2):
        store.add_sample(p["id"], p["classes"][0]["id"], object_photo(0, rng))
    with pytest.raises(StoreError) as err:
        store.add_sample(p["id"], p["classes"][1]["id"], object_photo(0, rng))
    assert err.value.code == "too_many_samples"
    with pytest.raises(StoreError) as err:
        store.create("another")
    assert err.value.code == "too_many_projects"
    assert sum(c["count"] for c in store.get(p["id"])["classes"]) == 2  # nothing already kept was lost


def test_deleting_a_project_while_it_trains_leaves_no_model_behind(client, settings):
    p = project_with_photos(client, 25, seed=5)
    job = client.post(f"/api/projects/{p['id']}/train", json={"method": "scratch", "epochs": 200}).json()
    deadline = time.time() + 60
    while client.get(f"/api/train/{job['id']}").json()["step"] == 0 and time.time() < deadline:
        time.sleep(0.1)  # training has started: stopping it will save a model
    assert client.delete(f"/api/projects/{p['id']}").status_code == 204
    assert wait_done(client, job["id"])["status"] == "stopped"
    deadline = time.time() + 10
    while time.time() < deadline and list((settings.data_dir / "models").glob("*.json")):
        time.sleep(0.1)  # the listener deletes the model the stopped job saved
    assert not list((settings.data_dir / "models").glob("*"))
    assert not any(m["task"] == "project" for m in client.get("/api/models").json()["models"])


def test_an_older_database_gains_the_newer_columns_and_keeps_its_rows(settings):
    """A database an older version made (projects without owner or training, no classes table)
    is brought up to date when the store opens it; what it held stays. SQLite here; PostgreSQL in
    test_postgres.py."""
    folder = settings.data_dir / "older"
    folder.mkdir()
    url = settings.database_url
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg") if url else f"sqlite:///{folder}/projects.sqlite3")
    older = MetaData()
    Table("projects", older, Column("id", Text, primary_key=True), Column("name", Text, nullable=False),
          Column("created", Double, nullable=False), Column("model_id", Text), Column("result", Text))
    older.create_all(engine)
    with engine.begin() as con:
        con.execute(older.tables["projects"].insert().values(id="0123abcd" * 4, name="Kept", created=1.0))
    engine.dispose()
    store = ProjectStore(folder, database_url=url)
    assert store.get("0123abcd" * 4)["name"] == "Kept"
    assert store.owner("0123abcd" * 4) is None and store.training("0123abcd" * 4) is None
    made = store.create("New", ["a", "b"], owner="someone")
    assert [p["name"] for p in store.list("someone")] == ["New"]
    assert [c["name"] for c in store.get(made["id"])["classes"]] == ["a", "b"]


def test_servers_starting_together_make_the_tables_once_and_share_them(settings):
    """Stores opening one new database at the same moment (servers starting together) take turns
    making the tables; then each one's writes are seen by all, and a broken constraint is
    sqlalchemy's IntegrityError whichever the database."""
    folder, url = settings.data_dir / "together", settings.database_url

    def start(_):
        return ProjectStore(folder, shared=True, database_url=url), SessionStore(folder, database_url=url)

    with ThreadPoolExecutor(6) as pool:
        started = list(pool.map(start, range(6)))
    made = [projects_.create(f"P{i}", ["a", "b"])["id"] for i, (projects_, _) in enumerate(started)]
    codes = [sessions_.start("model")[0]["code"] for _, sessions_ in started]
    assert sorted(p["id"] for p in started[0][0].list(None, everyone=True)) == sorted(made)
    assert all(started[-1][1].get(code)["code"] == code for code in codes)
    with pytest.raises(IntegrityError):
        started[1][0].db.insert(PROJECTS, id=made[0], name="Twice", created=0.0)
