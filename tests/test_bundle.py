"""A project as one .neuronlab file: exported and imported on another server byte for byte (photos
and weights; the same answer on the same photo), and every hostile file refused with a clear 4xx
that leaves nothing behind (no project, no photo, no model)."""
from __future__ import annotations

import errno
import io
import json
import pickle
import struct
import zipfile

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load as load_weights
from safetensors.torch import save as weights_bytes

from app.main import create_app
from app.settings import ROOT, Settings
from engine import datasets
from engine.stores import bundle, files
from engine.stores import store as model_store
from engine.stores.projects import ProjectStore
from engine.stores.store import ModelRegistry
from tests.conftest import OWNER
from tests.photos import crops
from tests.test_projects import add, jpeg, new_project

IMPORTER = "fedcba9876543210fedcba9876543210"


def trained_project(client) -> dict:
    """Cat or coffee, five views each, taught by transfer learning."""
    p = new_project(client, "Cat or coffee?", ["cat", "coffee"])
    for c, name in zip(p["classes"], ("chelsea.png", "coffee.png")):
        assert add(client, p["id"], c["id"], crops(name, 5, seed=len(name))).status_code == 201
    response = client.post(f"/api/projects/{p['id']}/train", json={})
    assert response.status_code == 201, response.text
    return response.json()["project"]


def entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rezip(files_: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files_.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            zf.writestr(info, data)
    return out.getvalue()


def upload(client, data: bytes, name="project.neuronlab"):
    return client.post("/api/projects/import", files={"file": (name, data, "application/zip")})


def weights_of(client, model_id: str) -> dict[str, torch.Tensor]:
    return load_weights(client.app.state.services.registry.weights_path(model_id).read_bytes())


def test_export_then_import_on_another_server_is_the_same_project_byte_for_byte(client, settings, tmp_path):
    source = trained_project(client)
    exported = client.get(f"/api/projects/{source['id']}/export")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "application/zip"
    assert 'filename="Cat or coffee_.neuronlab"' in exported.headers["content-disposition"]
    assert "filename*=UTF-8''Cat%20or%20coffee%3F.neuronlab" in exported.headers["content-disposition"]
    packed = entries(exported.content)
    assert set(packed) == {"manifest.json", "model.safetensors", "model.json"} | {
        f"photos/{c}/{n}.jpg" for c in range(2) for n in range(5)}
    manifest = json.loads(packed["manifest.json"])
    assert manifest["format"] == "neuronlab-project" and manifest["version"] == 1
    assert [c["name"] for c in manifest["classes"]] == ["cat", "coffee"]
    assert "owner" not in json.loads(packed["model.json"])
    # the same project exported again is the same file
    assert client.get(f"/api/projects/{source['id']}/export").content == exported.content

    other = tmp_path / "other"
    other.mkdir()
    with TestClient(create_app(settings.model_copy(update={"data_dir": other})),
                    headers={"X-Owner-Token": IMPORTER}) as there:
        response = upload(there, exported.content)
        assert response.status_code == 201, response.text
        imported = response.json()
        assert imported["id"] != source["id"] and imported["model_id"] != source["model_id"]
        assert [(c["name"], c["count"]) for c in imported["classes"]] == [("cat", 5), ("coffee", 5)]
        # photos byte for byte, in order
        for a, b in zip(source["classes"], imported["classes"]):
            for i, j in zip(a["samples"], b["samples"]):
                assert client.get(f"/api/projects/{source['id']}/samples/{i}.jpg").content == \
                    there.get(f"/api/projects/{imported['id']}/samples/{j}.jpg").content
        # weights byte for byte
        mine, theirs = weights_of(client, source["model_id"]), weights_of(there, imported["model_id"])
        assert set(mine) == set(theirs)
        for key in mine:
            assert mine[key].dtype == theirs[key].dtype and mine[key].numpy().tobytes() == theirs[key].numpy().tobytes()
        card = there.get(f"/api/models/{imported['model_id']}").json()
        assert card["base"] == "imagenet" and card["dataset"] == f"project:{imported['id']}"
        # the score kept, its held-out photos now this server's
        r, s = imported["result"], source["result"]
        assert r["accuracy"] == s["accuracy"] and r["per_class"] == s["per_class"] and r["confusion"] == s["confusion"]
        assert r["model_id"] == imported["model_id"] and r["methods"]["transfer"]["model_id"] == imported["model_id"]
        source_ids = [i for c in source["classes"] for i in c["samples"]]
        imported_ids = [i for c in imported["classes"] for i in c["samples"]]
        assert r["held_out"] == [imported_ids[source_ids.index(i)] for i in s["held_out"]]
        # the same answer on the same photo
        photo = jpeg(crops("chelsea.png", 1, seed=77)[0])
        ask = lambda c, pid: c.post(f"/api/projects/{pid}/predict", files={"image": ("u.jpg", photo, "image/jpeg")}).json()
        assert ask(client, source["id"])["probabilities"] == ask(there, imported["id"])["probabilities"]
        # it is the importer's: they may change it, the exporter's token may not
        assert there.patch(f"/api/projects/{imported['id']}", json={"name": "Mine now"}).status_code == 200
        assert there.patch(f"/api/projects/{imported['id']}", json={"name": "No"},
                           headers={"X-Owner-Token": OWNER}).status_code == 403
        # exported again from there: the same manifest, photos and weights
        again = entries(there.get(f"/api/projects/{imported['id']}/export").content)
        assert {k: v for k, v in again.items() if k.startswith("photos/")} == \
            {k: v for k, v in packed.items() if k.startswith("photos/")}
        assert {**json.loads(again["manifest.json"]), "name": manifest["name"]} == manifest
        # imported twice: two projects, two models, never one over the other
        twice = upload(there, exported.content).json()
        assert twice["id"] != imported["id"] and twice["model_id"] != imported["model_id"]
        assert there.get(f"/api/models/{imported['model_id']}").status_code == 200


def test_only_the_owner_exports_and_an_untrained_project_exports_without_a_model(client):
    p = new_project(client, "Ball or box", ["ball", "box"])
    assert add(client, p["id"], p["classes"][0]["id"], crops("chelsea.png", 2, seed=1)).status_code == 201
    refused = client.get(f"/api/projects/{p['id']}/export", headers={"X-Owner-Token": IMPORTER})
    assert refused.status_code == 403 and refused.json()["error"] == "not_owner"
    assert client.get("/api/projects/00000000000000000000000000000000/export").status_code == 404
    packed = entries(client.get(f"/api/projects/{p['id']}/export").content)
    assert set(packed) == {"manifest.json", "photos/0/0.jpg", "photos/0/1.jpg"}
    assert json.loads(packed["manifest.json"])["model"] is None
    imported = upload(client, rezip(packed), "ball.neuronlab").json()
    assert [c["count"] for c in imported["classes"]] == [2, 0] and imported["model_id"] is None
    assert imported["result"] is None


# --- hostile files ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One server (at most 40 photos a project) with a trained project, and that project's file."""
    data = tmp_path_factory.mktemp("hostile") / "data"
    data.mkdir()
    (data / "mnist").symlink_to(datasets.locate("mnist", ROOT / "data"), target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEURONLAB_ALLOWED_HOSTS", "testserver")
        settings = Settings(data_dir=data, models_dir=ROOT / "models", max_upload_bytes=2 * 1024 * 1024,
                            max_project_file_bytes=2 * 1024 * 1024, inference_processes=0, training_niceness=0,
                            project_samples=40)
        with TestClient(create_app(settings), headers={"X-Owner-Token": OWNER}) as c:
            p = trained_project(c)
            yield c, c.get(f"/api/projects/{p['id']}/export").content, data


def everything(client, data) -> set:
    """Every file of the projects and the user models, and every project row."""
    found = {p for folder in ("projects", "models") for p in (data / folder).rglob("*")}
    return found | {("row", p["id"]) for p in client.app.state.services.projects.list(None, everyone=True)}


def changed(good: bytes, **replace) -> bytes:
    packed = entries(good)
    for name, value in replace.items():
        name = name.replace("__", "/").replace("_dot_", ".")
        if value is None:
            packed.pop(name)
        else:
            packed[name] = value
    return rezip(packed)


def with_manifest(good: bytes, edit) -> bytes:
    packed = entries(good)
    manifest = json.loads(packed["manifest.json"])
    edit(manifest)
    packed["manifest.json"] = json.dumps(manifest).encode()
    return rezip(packed)


def declaring(size: int) -> bytes:
    """A tiny zip whose one entry says it unpacks to `size` bytes."""
    data = bytearray(rezip({"manifest.json": b"{}" * 300}, zipfile.ZIP_DEFLATED))
    at = data.index(b"PK\x01\x02")
    data[at + 24:at + 28] = struct.pack("<I", size)
    return bytes(data)


def too_big_unpacked() -> bytes:
    """Entries of about 1 bit a byte: packed 8 times smaller, so under the upload cap, but more
    than the server unpacks."""
    bits = torch.randint(0, 2, (9 * 2**20,), generator=torch.Generator().manual_seed(0)).to(torch.uint8).numpy()
    return rezip({f"photos/0/{i}.jpg": (bits[i::3] + 65).tobytes() for i in range(3)}, zipfile.ZIP_DEFLATED)


def wrong_tensors() -> bytes:
    return weights_bytes({"0.weight": torch.zeros(3, 1280), "0.bias": torch.zeros(3)})


HOSTILE = {
    "not a zip": (lambda good: b"just some text, not a project", 422, "bundle_not_zip"),
    "too large": (lambda good: b"PK" + b"\0" * (3 * 2**20), 413, "body_too_large"),
    "zip bomb": (lambda good: rezip({"manifest.json": b"\0" * (20 * 2**20)}, zipfile.ZIP_DEFLATED), 422, "bundle_zip_bomb"),
    "declares a huge entry": (lambda good: declaring(2**31), 422, "bundle_zip_bomb"),
    "unpacks too large": (lambda good: too_big_unpacked(), 413, "bundle_too_large"),
    "../evil": (lambda good: changed(good, **{"..__evil": b"x"}), 422, "bundle_unsafe_path"),
    "/abs": (lambda good: changed(good, **{"__abs": b"x"}), 422, "bundle_unsafe_path"),
    "C:\\x": (lambda good: changed(good, **{"C:\\x": b"x"}), 422, "bundle_unsafe_path"),
    "photos\\..\\x": (lambda good: changed(good, **{"photos\\..\\x": b"x"}), 422, "bundle_unsafe_path"),
    "too many entries": (lambda good: rezip({**entries(good), **{f"extra/{i}": b"" for i in range(60)}}), 422,
                         "bundle_too_many_files"),
    "a listed photo is missing": (lambda good: changed(good, photos__1__4_dot_jpg=None), 422, "bundle_missing_file"),
    "an extra photo": (lambda good: changed(good, photos__1__5_dot_jpg=entries(good)["photos/1/4.jpg"]), 422,
                       "bundle_extra_file"),
    "a photo that is not an image": (lambda good: changed(good, photos__0__2_dot_jpg=b"#!/bin/sh\necho hi\n"), 422,
                                     "bundle_bad_photo"),
    "a pickle for weights": (lambda good: changed(good, model_dot_safetensors=pickle.dumps({"0.weight": [[0.0] * 4]})),
                             422, "bundle_model_not_safetensors"),
    "torch.save for weights": (lambda good: changed(good, model_dot_safetensors=torch_saved()), 422,
                               "bundle_model_not_safetensors"),
    "tensors that do not fit the card": (lambda good: changed(good, model_dot_safetensors=wrong_tensors()), 422,
                                         "bundle_model_mismatch"),
    "500 classes": (lambda good: with_manifest(good, lambda m: m.update(
        classes=[{"name": f"class {i}", "photos": []} for i in range(500)])), 422, "too_many_classes"),
    "bad JSON": (lambda good: changed(good, manifest_dot_json=b'{"format": "neuronlab-project", '), 422,
                 "bundle_manifest"),
    "no manifest": (lambda good: changed(good, manifest_dot_json=None), 422, "bundle_manifest"),
    "a newer format": (lambda good: with_manifest(good, lambda m: m.update(version=99)), 422, "bundle_version"),
    "a class name with control characters": (lambda good: with_manifest(good, lambda m: m["classes"][0].update(
        name="cat\u202e")), 422, "bundle_manifest"),
    "a result naming a photo it lacks": (lambda good: with_manifest(good, lambda m: m["result"].update(
        held_out=["photos/9/9.jpg"])), 422, "bundle_manifest"),
    "a card for another network": (lambda good: changed(good, model_dot_json=json.dumps({
        **json.loads(entries(good)["model.json"]), "base": None, "preprocess": "photo"}).encode()), 422,
        "bundle_model_card"),
}


def torch_saved() -> bytes:
    out = io.BytesIO()
    torch.save({"0.weight": torch.zeros(2, 1280), "0.bias": torch.zeros(2)}, out)
    return out.getvalue()


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_file_is_a_clear_4xx_and_imports_nothing(hostile, case):
    client, good, data = hostile
    make, status, code = HOSTILE[case]
    before = everything(client, data)
    response = upload(client, make(good))
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["message"], body
    assert everything(client, data) == before


def test_the_good_file_imports_on_the_same_server(hostile):
    client, good, data = hostile
    before = everything(client, data)
    imported = upload(client, good)
    assert imported.status_code == 201, imported.text
    assert len(everything(client, data) - before) == 1 + 1 + 10 + 2  # the row, its folder, 10 photos, the model's 2 files
    assert client.delete(f"/api/projects/{imported.json()['id']}").status_code == 204
    assert everything(client, data) == before


def test_limits_seen_by_the_engine_alone(hostile, tmp_path):
    client, good, _ = hostile
    store = ProjectStore(tmp_path / "projects")
    registry = ModelRegistry([tmp_path / "models"])  # no ImageNet network here
    with pytest.raises(bundle.StoreError) as small:
        bundle.import_bundle(store, registry, good, None, bundle.BundleLimits(max_bytes=1000))
    assert small.value.status == 413 and small.value.code == "bundle_too_large"
    with pytest.raises(bundle.StoreError) as unpacked:
        bundle.import_bundle(store, registry, good, None, bundle.BundleLimits(max_unpacked=1000))
    assert unpacked.value.status == 413
    with pytest.raises(bundle.StoreError) as base:
        bundle.import_bundle(store, registry, good, None)
    assert base.value.status == 422 and base.value.code == "missing_base_model" and "imagenet" in base.value.message
    assert store.list(None, everyone=True) == [] and not [p for p in (tmp_path / "projects").iterdir() if p.is_dir()]


def test_a_failure_while_writing_leaves_nothing_behind(hostile, monkeypatch):
    client, good, data = hostile
    before = everything(client, data)
    written = []
    real = files.write_bytes

    def fails_at_the_fourth_photo(path, content, mode=0o644):
        if path.parent.name.startswith(".import-"):
            written.append(path)
            if len(written) == 4:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, content, mode)

    monkeypatch.setattr(files, "write_bytes", fails_at_the_fourth_photo)
    response = upload(client, good)
    assert response.status_code == 507 and response.json()["error"] == "disk_full"
    assert len(written) == 4 and everything(client, data) == before

    monkeypatch.setattr(files, "write_bytes", real)

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model_store, "save", no_room)
    assert upload(client, good).status_code == 507 and everything(client, data) == before


def test_a_model_trained_from_scratch_imports_too_and_a_huge_one_does_not(hostile):
    client, good, data = hostile
    from engine import models
    net = models.build_layers(models.PHOTO_LAYERS, 2, input_shape=models.PHOTO_INPUT)
    card = {**json.loads(entries(good)["model.json"]), "base": None, "preprocess": "photo", "architecture": "custom",
            "layers": models.PHOTO_LAYERS, "input_shape": list(models.PHOTO_INPUT)}
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    scratch = changed(good, model_dot_json=json.dumps(card).encode(), model_dot_safetensors=weights_bytes(state))
    imported = upload(client, scratch)
    assert imported.status_code == 201, imported.text
    model_id = imported.json()["model_id"]
    assert client.get(f"/api/models/{model_id}").json()["input_shape"] == [3, 32, 32]
    read = client.post(f"/api/projects/{imported.json()['id']}/predict",
                       files={"image": ("u.jpg", jpeg(crops("coffee.png", 1, seed=5)[0]), "image/jpeg")})
    assert read.status_code == 200 and len(read.json()["probabilities"]) == 2
    for key, tensor in weights_of(client, model_id).items():
        assert tensor.numpy().tobytes() == state[key].numpy().tobytes()

    before = everything(client, data)
    huge = {**card, "layers": [{"type": "dense", "units": 4096}] * 3}
    response = upload(client, changed(good, model_dot_json=json.dumps(huge).encode()))
    assert response.status_code == 422 and response.json()["error"] == "bundle_model_card"
    assert "weights" in response.json()["message"] and everything(client, data) == before


def test_a_project_file_has_its_own_cap_larger_than_an_uploads(settings, monkeypatch):
    """A class's project with hundreds of photos is larger than one upload may be: the import route
    has its own cap (max_project_file_bytes); every other route keeps max_upload_bytes."""

    roomy = settings.model_copy(update={"max_upload_bytes": 1024 * 1024, "max_project_file_bytes": 4 * 1024 * 1024})
    with TestClient(create_app(roomy), headers={"X-Owner-Token": OWNER}) as c:
        big = b"PK" + b"\0" * (2 * 2**20)  # 2 MiB: over an upload's cap, under a project file's
        got = c.post("/api/projects/import", files={"file": ("big.neuronlab", big)})
        assert got.status_code == 422 and got.json()["error"] == "bundle_not_zip", got.text
        upload = c.post("/api/predict", files={"image": ("big.png", big)})
        assert upload.status_code == 413 and upload.json()["error"] == "body_too_large"


def test_an_import_a_crash_cut_short_is_cleared_at_the_next_start(tmp_path):
    """Photos of an import are written to .import-<id> and renamed once its rows are in: a kill -9
    between leaves that folder, with no row; the store's next start removes it."""
    ProjectStore(tmp_path)
    left = tmp_path / ".import-0123456789abcdef0123456789abcdef"
    (left / "0").mkdir(parents=True)
    (left / "0" / "1.jpg").write_bytes(b"half a photo")
    store = ProjectStore(tmp_path)
    assert not left.exists() and store.list(None, everyone=True) == []
