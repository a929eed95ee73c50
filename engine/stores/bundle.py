"""A teachable project as one file (`<name>.neuronlab`): a zip another server imports as a new
project of whoever imports it.

Layout (format 1):
    manifest.json       {"format": "neuronlab-project", "version": 1, "name", "classes": [{"name",
                        "photos": [{"file", "source"}]}], "model": {"weights", "card"} or null,
                        "result": the last training's summary (photo ids written as file names)}
    photos/<class index>/<n>.jpg   the kept photos, byte for byte
    model.safetensors   the project's model's weights (when trained)
    model.json          its model card (no owner)

An import is hostile input. Everything is checked in memory before anything is written: the
archive's size and the sum of its entries' declared sizes, each entry's compression ratio (zip
bombs), the number of entries, every name (relative, no "..", no leading "/", no drive, no
backslash), the manifest (types, names by the one naming rule, the server's limits on classes and
photos), every photo (it is there, nothing else is, and it decodes within the pixel limits), the
weights (safetensors only, never a pickle; every tensor the card's network needs, with its shape
and type) and the base model a transfer head needs. A refusal is a StoreError (4xx) and leaves
nothing behind: the model is written whole or not at all, then the project's rows in one
transaction with its photos in a folder that takes its name only then.
"""
from __future__ import annotations

import io
import json
import math
import re
import secrets
import zipfile
import zlib
from dataclasses import dataclass

import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load as load_weights

from engine import imageio, imagenet, models, photonet
from engine.preprocess import rgb, shrink
from engine.refusal import Refusal
from engine.stores import store as model_store
from engine.stores.cards import ModelCard
from engine.stores.db import MODEL_NAME_LENGTH, StoreError, clean_name
from engine.stores.projects import STORED_SIZE, ProjectStore

FORMAT, VERSION = "neuronlab-project", 1
SUFFIX = ".neuronlab"
MEDIA_TYPE = "application/zip"
MANIFEST, WEIGHTS, CARD = "manifest.json", "model.safetensors", "model.json"
MAX_RATIO = 100            # an entry may unpack to at most this many times its packed size
MAX_JSON = 4 * 1024 * 1024  # the manifest and the card, unpacked
MAX_HEADER = 1024 * 1024   # a safetensors header (a project's model names a few dozen tensors)
SOURCES = ("upload", "webcam")
WAYS = ("transfer", "scratch")
NOTHING = " Nothing was imported."
DATE = (1980, 1, 1, 0, 0, 0)  # every entry's time: the same project gives the same file


@dataclass
class BundleLimits:
    max_bytes: int = 8 * 1024 * 1024          # the file itself (the server's upload cap)
    max_unpacked: int | None = None           # its entries unpacked, together (default: 4 x max_bytes)
    max_pixels: int = 40_000_000              # a photo's pixels (engine.imageio.decode)
    max_decoded_bytes: int = imageio.MAX_BYTES
    max_parameters: int = 3_000_000           # the model's weights

    @property
    def unpacked(self) -> int:
        return self.max_unpacked or 4 * self.max_bytes


def refused(message: str, code: str = "bundle_invalid", status: int = 422, field: str | None = "file") -> StoreError:
    return StoreError(status, code, message + NOTHING, field)


# --- export --------------------------------------------------------------------------------------

def export(store: ProjectStore, registry: model_store.ModelRegistry, project_id: str) -> bytes:
    """The project as a .neuronlab file: its classes, kept photos (byte for byte), its model and
    the last training's result (when it has a model this server can read)."""
    project = store.get(project_id)
    sources = store.sources(project_id)
    buffer = io.BytesIO()
    refs: dict[int, str] = {}
    with zipfile.ZipFile(buffer, "w") as zf:
        classes = []
        for ci, c in enumerate(project["classes"]):
            photos = []
            for sample_id in c["samples"]:
                try:
                    data = store.sample_path(project_id, sample_id).read_bytes()
                except FileNotFoundError:  # lost on disk: the project is exported without it
                    continue
                name = f"photos/{ci}/{len(photos)}.jpg"
                _put(zf, name, data, zipfile.ZIP_STORED)  # JPEG: packing gains nothing
                refs[sample_id] = name
                photos.append({"file": name, "source": sources.get(sample_id, "upload")})
            classes.append({"name": c["name"], "photos": photos})
        model, result = None, None
        card, weights = _model_files(registry, project["model_id"])
        if card is not None and project["result"]:
            _put(zf, WEIGHTS, weights, zipfile.ZIP_STORED)
            _put(zf, CARD, json.dumps(card, indent=1).encode(), zipfile.ZIP_DEFLATED)
            model, result = {"weights": WEIGHTS, "card": CARD}, _result_out(project["result"], refs)
        manifest = {"format": FORMAT, "version": VERSION, "name": project["name"], "classes": classes,
                    "model": model, "result": result}
        _put(zf, MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False).encode(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _put(zf: zipfile.ZipFile, name: str, data: bytes, compression: int) -> None:
    info = zipfile.ZipInfo(name, DATE)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _model_files(registry: model_store.ModelRegistry, model_id: str | None) -> tuple[dict | None, bytes | None]:
    if not model_id or model_id not in registry:
        return None, None
    try:
        weights = registry.weights_path(model_id).read_bytes()
    except (Refusal, OSError):
        return None, None
    return registry.card(model_id).public(), weights


def _result_out(result: dict, refs: dict[int, str]) -> dict:
    """The result with photo ids written as the photos' file names (ids are this server's);
    photos no longer kept are left out."""
    files = lambda ids: [refs[i] for i in ids or [] if i in refs]
    out = {k: v for k, v in result.items() if k not in ("model_id", "job", "held_out", "mistakes", "methods")}
    out["held_out"] = files(result.get("held_out"))
    out["mistakes"] = {cell: files(ids) for cell, ids in (result.get("mistakes") or {}).items()}
    out["methods"] = {way: {**{k: v for k, v in m.items() if k != "model_id"}, "held_out": files(m.get("held_out"))}
                      for way, m in (result.get("methods") or {}).items() if isinstance(m, dict)}
    return out


# --- import: reading the archive -----------------------------------------------------------------

def _safe_name(name: str) -> bool:
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    return (0 < len(name) <= 200 and "\\" not in name and ":" not in name and not name.startswith("/")
            and not any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
            and not any(part in ("", ".", "..") for part in parts))


def read_entries(data: bytes, limits: BundleLimits, max_entries: int) -> dict[str, bytes]:
    """The archive's files (name -> bytes), once the archive is known to be safe to unpack."""
    if len(data) > limits.max_bytes:
        raise refused(f"The file is {len(data) / 2**20:.1f} MB; a project file may be at most "
                      f"{limits.max_bytes / 2**20:.1f} MB on this server.", "bundle_too_large", 413)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError):
        raise refused("This is not a NeuronLab project file (.neuronlab): it is not a zip archive.",
                      "bundle_not_zip") from None
    if len(infos) > max_entries:
        raise refused(f"The file holds {len(infos)} entries; a project file on this server holds at most "
                      f"{max_entries} (its photos, its model and the manifest).", "bundle_too_many_files")
    seen, total = set(), 0
    for info in infos:
        name = info.orig_filename
        if not _safe_name(name) or name != info.filename:
            raise refused(f"The file has an entry named {name[:80]!r}: every name in a project file must be a "
                          "relative path inside it (no '..', no leading '/', no drive, no backslash).",
                          "bundle_unsafe_path")
        if name in seen:
            raise refused(f"The file has two entries named {name!r}.", "bundle_duplicate_file")
        seen.add(name)
        if info.flag_bits & 0x1:
            raise refused(f"{name} is encrypted; a project file is never encrypted.", "bundle_unreadable")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refused(f"{name} is packed in a way this server does not read (only stored or deflated).",
                          "bundle_unreadable")
        if info.file_size > 1024 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise refused(f"{name} would unpack to {info.file_size:,} bytes from {info.compress_size:,}: more than "
                          f"{MAX_RATIO} times its packed size, as a zip bomb does.", "bundle_zip_bomb")
        total += info.file_size
        if total > limits.unpacked:
            raise refused(f"The file's entries would unpack to more than {limits.unpacked / 2**20:.0f} MB, "
                          "the most this server unpacks.", "bundle_too_large", 413)
    entries = {}
    for info in infos:
        if info.is_dir():
            if info.file_size:
                raise refused(f"The folder entry {info.filename!r} has content.", "bundle_unreadable")
            continue
        try:
            with zf.open(info) as f:
                content = f.read(info.file_size + 1)  # never more than it declares
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError):
            raise refused(f"{info.filename} could not be unpacked: the file is damaged.", "bundle_unreadable") from None
        if len(content) != info.file_size:
            raise refused(f"{info.filename} is not the size the archive says it is: the file is damaged.",
                          "bundle_unreadable")
        entries[info.filename] = content
    return entries


def _json(entries: dict[str, bytes], name: str, what: str) -> object:
    if name not in entries:
        raise refused(f"The file has no {name}: it is not a NeuronLab project file.", "bundle_manifest")
    if len(entries[name]) > MAX_JSON:
        raise refused(f"{name} is larger than {MAX_JSON // 2**20} MB.", "bundle_manifest")
    try:
        return json.loads(entries[name].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise refused(f"{name} ({what}) is not valid JSON.", "bundle_manifest") from None


def _number(value: object, lo: float = 0.0, hi: float = math.inf) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and lo <= value <= hi)


def _need(ok: bool, message: str, code: str = "bundle_manifest") -> None:
    if not ok:
        raise refused(message, code)


# --- import: the manifest ------------------------------------------------------------------------

@dataclass
class Manifest:
    name: str
    classes: list[tuple[str, list[tuple[str, str]]]]  # (class name, [(file, source)])
    model: dict | None
    result: dict | None


def read_manifest(entries: dict[str, bytes], store: ProjectStore) -> Manifest:
    m = _json(entries, MANIFEST, "the project's description")
    _need(isinstance(m, dict) and m.get("format") == FORMAT,
          f"{MANIFEST} does not describe a NeuronLab project (its format is not {FORMAT!r}).")
    version = m.get("version")
    _need(isinstance(version, int) and not isinstance(version, bool) and version >= 1,
          f"{MANIFEST} has no valid format version.")
    _need(version <= VERSION, f"This project file was made by a newer NeuronLab (format {version}); this server "
          f"reads format {VERSION}. Update this server, or export the project from a server of this version.",
          "bundle_version")
    try:
        name = clean_name(m.get("name"), "project")
    except StoreError as exc:
        raise refused(f"{MANIFEST}: {exc.message}", "bundle_manifest") from None
    classes = m.get("classes")
    _need(isinstance(classes, list), f"{MANIFEST}: 'classes' must be a list of classes.")
    if len(classes) > store.limits.classes:
        raise refused(f"The project has {len(classes)} classes; a project on this server has at most "
                      f"{store.limits.classes}.", "too_many_classes")
    out, files, folded = [], set(), set()
    for i, c in enumerate(classes):
        _need(isinstance(c, dict) and isinstance(c.get("photos"), list),
              f"{MANIFEST}: class {i + 1} must be an object with a 'name' and a list of 'photos'.")
        try:
            class_name = clean_name(c.get("name"), "class")
        except StoreError as exc:
            raise refused(f"{MANIFEST}: class {i + 1}: {exc.message}", "bundle_manifest") from None
        _need(class_name.casefold() not in folded, f"{MANIFEST}: two classes are called {class_name!r}.",
              "duplicate_class")
        folded.add(class_name.casefold())
        photos = []
        for p in c["photos"]:
            _need(isinstance(p, dict) and isinstance(p.get("file"), str) and _safe_name(p["file"])
                  and p.get("source", "upload") in SOURCES,
                  f"{MANIFEST}: each photo of {class_name!r} must be {{\"file\": a name in the archive, "
                  f"\"source\": {' or '.join(SOURCES)}}}.")
            _need(p["file"] not in files and p["file"] not in (MANIFEST, WEIGHTS, CARD),
                  f"{MANIFEST} lists {p['file']!r} twice.")
            files.add(p["file"])
            photos.append((p["file"], p.get("source", "upload")))
        out.append((class_name, photos))
    if len(files) > store.limits.samples:
        raise refused(f"The project has {len(files)} photos; a project on this server keeps at most "
                      f"{store.limits.samples}.", "too_many_samples")
    model = m.get("model")
    _need(model is None or model == {"weights": WEIGHTS, "card": CARD},
          f"{MANIFEST}: 'model' must be null or {{\"weights\": {WEIGHTS!r}, \"card\": {CARD!r}}}.")
    result = m.get("result")
    _need(result is None or isinstance(result, dict), f"{MANIFEST}: 'result' must be null or an object.")
    return Manifest(name, out, model, result if model else None)


def check_files(entries: dict[str, bytes], manifest: Manifest) -> None:
    """Every file the manifest names is in the archive, and nothing else is."""
    named = {f for _, photos in manifest.classes for f, _ in photos} | {MANIFEST}
    if manifest.model:
        named |= {WEIGHTS, CARD}
    missing = sorted(named - set(entries))
    if missing:
        raise refused(f"{MANIFEST} lists {len(missing)} file(s) the archive does not hold: "
                      f"{', '.join(missing[:5])}.", "bundle_missing_file")
    extra = sorted(set(entries) - named)
    if extra:
        raise refused(f"The archive holds {len(extra)} file(s) {MANIFEST} does not list: {', '.join(extra[:5])}.",
                      "bundle_extra_file")


# --- import: photos ------------------------------------------------------------------------------

JPEG_END = b"\xff\xd9"


def read_photo(name: str, data: bytes, limits: BundleLimits) -> tuple[bytes, int, int]:
    """The bytes to keep for a photo and its size. A photo as this server keeps them (a JPEG of at
    most 320 pixels, RGB, with nothing but its pixels) is kept byte for byte; any other image is
    shrunk and re-encoded, as an uploaded photo is."""
    try:
        img = imageio.decode(data, limits.max_pixels, limits.max_decoded_bytes)
    except imageio.ImageError as exc:
        raise refused(f"{name}: {exc.message}", "bundle_bad_photo") from None
    with Image.open(io.BytesIO(data)) as raw:
        plain = (raw.format == "JPEG" and raw.mode == "RGB" and max(raw.size) <= STORED_SIZE
                 and raw.size == img.size and data.endswith(JPEG_END)
                 and all(marker == "APP0" for marker, _ in getattr(raw, "applist", []))
                 and not {"exif", "icc_profile", "comment", "xmp", "photoshop", "adobe"} & set(raw.info))
    if plain:
        return data, img.width, img.height
    photo = rgb(shrink(img, STORED_SIZE))
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90)
    return out.getvalue(), photo.width, photo.height


# --- import: the model ---------------------------------------------------------------------------

MADE_NAME_KEYS = {"network", "layers", "data", "accuracy", "trained", "lr"}


def read_model(entries: dict[str, bytes], registry: model_store.ModelRegistry, limits: BundleLimits,
               owner: str | None) -> tuple[dict, torch.nn.Module]:
    """The card's fields (checked) and its network with the file's weights loaded."""
    card = _json(entries, CARD, "the model card")
    bad = lambda why: refused(f"{CARD}: {why}", "bundle_model_card")
    if not isinstance(card, dict):
        raise bad("a model card must be a JSON object.")
    try:
        name = clean_name(card.get("name"), "model", MODEL_NAME_LENGTH)
        labels = [clean_name(label, "class") for label in card.get("labels") or []] \
            if isinstance(card.get("labels"), list) else None
    except StoreError as exc:
        raise bad(exc.message) from None
    if not labels or not 2 <= len(labels) <= 50:
        raise bad("'labels' must list the model's 2 to 50 classes.")
    base, layers, shape = card.get("base"), card.get("layers"), card.get("input_shape")
    if base is not None:
        if base != imagenet.MODEL_ID:
            raise bad(f"a transfer head is trained on {imagenet.MODEL_ID!r}, not {str(base)[:40]!r}.")
        if base not in registry:
            raise refused(f"The model was trained by transfer learning on the ImageNet photo network "
                          f"({imagenet.MODEL_ID!r}), which is not installed on this server: run scripts/setup.sh "
                          "here first.", "missing_base_model")
        if layers not in (None, []) or card.get("preprocess") != "imagenet" or \
                shape != [3, photonet.INPUT_SIZE, photonet.INPUT_SIZE]:
            raise bad("a transfer head reads 3x224x224 photos prepared for ImageNet, with no layers of its own.")
        architecture, features = "transfer_head", (photonet.FEATURES,)
    else:
        if not isinstance(layers, list) or card.get("preprocess") != "photo" or shape != list(models.PHOTO_INPUT):
            raise bad("a model trained from scratch on a project reads 3x32x32 photos through its list of layers.")
        architecture, features = "custom", tuple(models.PHOTO_INPUT)
    try:
        _, parameters, _ = models.measure(layers or [], len(labels), features)
    except (Refusal, KeyError, TypeError, ValueError) as exc:
        raise bad(f"its network cannot be built: {getattr(exc, 'message', exc)}") from None
    if parameters > limits.max_parameters:
        raise bad(f"its network has {parameters:,} weights; this server takes at most {limits.max_parameters:,}.")
    accuracy = card.get("test_accuracy")
    training = card.get("training") if isinstance(card.get("training"), dict) else {}
    if len(json.dumps(training)) > 64 * 1024:
        training = {}
    made = card.get("made_name")
    made = made if isinstance(made, dict) and set(made) <= MADE_NAME_KEYS and all(
        v is None or isinstance(v, (str, int, float)) for v in made.values()) else None
    description = card.get("description") if isinstance(card.get("description"), str) else ""
    fields = dict(name=name, task="project", labels=labels, architecture=architecture,
                  preprocess="imagenet" if base else "photo", test_accuracy=accuracy if _number(accuracy, 0, 1) else None,
                  training=training, description=description[:2000], layers=layers if base is None else None,
                  input_shape=shape, owner=owner, base=base, made_name=made)
    module = model_store.build_for(ModelCard(id="imported", dataset="project", **fields))
    load_checked(module, entries[WEIGHTS])
    fields["parameters"] = models.count_parameters(module)
    return fields, module.eval()


def load_checked(module: torch.nn.Module, data: bytes) -> None:
    """Load safetensors bytes into `module`: every tensor it needs, of its shape and type, and no
    other (never unpickled: safetensors holds only a JSON header and raw numbers)."""
    length = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 0 < length <= min(len(data) - 8, MAX_HEADER):
        raise refused(f"{WEIGHTS} is not a safetensors file (no valid header); a model's weights are only "
                      "ever read as safetensors.", "bundle_model_not_safetensors")
    try:
        header = json.loads(data[8:8 + length])
        if not isinstance(header, dict):
            raise ValueError
        tensors = load_weights(data)
    except (ValueError, SafetensorError, RuntimeError, TypeError, OverflowError):
        raise refused(f"{WEIGHTS} is not a valid safetensors file.", "bundle_model_not_safetensors") from None
    wanted = module.state_dict()
    missing, unexpected = sorted(set(wanted) - set(tensors)), sorted(set(tensors) - set(wanted))
    if missing or unexpected:
        raise refused(f"{WEIGHTS} does not fit its card's network: "
                      + "; ".join(filter(None, [missing and f"missing {', '.join(missing[:5])}",
                                                unexpected and f"not in the network {', '.join(unexpected[:5])}"])) + ".",
                      "bundle_model_mismatch")
    for key, tensor in tensors.items():
        if tensor.shape != wanted[key].shape or tensor.dtype != wanted[key].dtype:
            raise refused(f"{WEIGHTS} does not fit its card's network: {key} is {tuple(tensor.shape)} {tensor.dtype}, "
                          f"the network needs {tuple(wanted[key].shape)} {wanted[key].dtype}.", "bundle_model_mismatch")
    module.load_state_dict(tensors, strict=True)


# --- import: the result --------------------------------------------------------------------------

CELL = re.compile(r"^(\d{1,2}),(\d{1,2})$")


def read_result(result: dict | None, labels: list[str], files: set[str]) -> dict | None:
    """The last training's summary, checked field by field (what the page shows of it), its
    photos still named by file; anything else it carries is dropped."""
    if result is None:
        return None
    k = len(labels)
    need = lambda ok, what: _need(ok, f"{MANIFEST}: the result's {what}.")
    refs = lambda value, what: need(isinstance(value, list) and all(isinstance(f, str) and f in files for f in value),
                                    f"{what} must list photos of the project") or list(value)
    need(result.get("method") in WAYS, f"'method' must be {' or '.join(WAYS)}")
    need(result.get("labels") == labels, "'labels' must be the model card's labels")
    need(isinstance(result.get("per_class"), list) and len(result["per_class"]) == k
         and all(v is None or _number(v, 0, 1) for v in result["per_class"]), "'per_class' must give each class's accuracy")
    confusion = result.get("confusion")
    need(isinstance(confusion, list) and len(confusion) == k and all(
        isinstance(row, list) and len(row) == k and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                        for v in row) for row in confusion),
         f"'confusion' must be {k} rows of {k} counts")
    out = {"method": result["method"], "job": None, "labels": labels, "per_class": result["per_class"],
           "confusion": confusion, "held_out": refs(result.get("held_out", []), "'held_out'"), "status": "done"}
    for key in ("accuracy", "seconds", "features_seconds", "steps", "photos", "trained_parameters", "frozen_parameters"):
        if key in result and result[key] is not None:
            need(_number(result[key], 0, 1 if key == "accuracy" else 1e12), f"{key!r} must be a number")
            out[key] = result[key]
    if isinstance(result.get("status"), str) and len(result["status"]) <= 20:
        out["status"] = result["status"]
    mistakes = result.get("mistakes", {})
    need(isinstance(mistakes, dict) and all(
        isinstance(c, str) and CELL.match(c) and max(map(int, CELL.match(c).groups())) < k for c in mistakes),
         "'mistakes' must name cells of the confusion matrix")
    out["mistakes"] = {cell: refs(ids, "'mistakes'") for cell, ids in mistakes.items()}
    methods = result.get("methods", {})
    need(isinstance(methods, dict) and set(methods) <= set(WAYS) and all(isinstance(m, dict) for m in methods.values()),
         f"'methods' must hold the score of each way ({', '.join(WAYS)})")
    out["methods"] = {}
    for way, m in methods.items():
        need(m.get("accuracy") is None or _number(m["accuracy"], 0, 1), f"{way} accuracy must be a number")
        need(m.get("per_class") is None or (isinstance(m["per_class"], list) and len(m["per_class"]) == k
                                            and all(v is None or _number(v, 0, 1) for v in m["per_class"])),
             f"{way} per-class accuracy must give each class's")
        for key in ("photos", "seconds"):
            need(m.get(key) is None or _number(m[key], 0, 1e12), f"{way} {key} must be a number")
        out["methods"][way] = {"accuracy": m.get("accuracy"), "per_class": m.get("per_class"),
                               "held_out": refs(m.get("held_out", []), f"{way} 'held_out'"),
                               "photos": m.get("photos"), "seconds": m.get("seconds")}
    return out


def _with_ids(result: dict, model_id: str, ids: dict[str, int]) -> dict:
    """The checked result with this server's photo ids and the new model's id."""
    out = {**result, "model_id": model_id, "held_out": [ids[f] for f in result["held_out"]],
           "mistakes": {cell: [ids[f] for f in files] for cell, files in result["mistakes"].items()}}
    out["methods"] = {way: {**m, "held_out": [ids[f] for f in m["held_out"]],
                            "model_id": model_id if way == result["method"] else None}
                      for way, m in result["methods"].items()}
    return out


# --- import --------------------------------------------------------------------------------------

def import_bundle(store: ProjectStore, registry: model_store.ModelRegistry, data: bytes, owner: str | None,
                  limits: BundleLimits | None = None) -> dict:
    """A .neuronlab file as a new project of `owner` (a new id; its model a new model): checked
    whole first, then written whole (StoreError 4xx, nothing written, if anything is wrong)."""
    limits = limits or BundleLimits()
    entries = read_entries(data, limits, store.limits.samples + store.limits.classes + 8)
    manifest = read_manifest(entries, store)
    check_files(entries, manifest)
    classes = []
    for class_name, photos in manifest.classes:
        kept = []
        for file, source in photos:
            content, width, height = read_photo(file, entries[file], limits)
            kept.append((content, source, width, height))
        classes.append((class_name, kept))
    project_id = secrets.token_hex(16)
    model_id, result, card = None, None, None
    if manifest.model:
        fields, module = read_model(entries, registry, limits, owner)
        result = read_result(manifest.result, fields["labels"], {f for _, p in manifest.classes for f, _ in p})
        slug = re.sub(r"[^a-z0-9]+", "-", manifest.name.lower()).strip("-")[:24].strip("-") or "project"
        model_id = f"{slug}-imported-{secrets.token_hex(16)}"
        while model_id in registry:  # never over another model
            model_id = f"{slug}-imported-{secrets.token_hex(16)}"
        card = ModelCard(id=model_id, dataset=f"project:{project_id}", **fields)
        model_store.save(registry.user_folder, card, module)
    files_order = [f for _, photos in manifest.classes for f, _ in photos]
    try:
        project = store.insert_whole(
            project_id, manifest.name, owner, classes, model_id,
            lambda ids: result and _with_ids(result, model_id, dict(zip(files_order, [i for c in ids for i in c])))
        )
    except BaseException:
        if model_id:
            for suffix in (".json", ".safetensors"):
                (registry.user_folder / f"{model_id}{suffix}").unlink(missing_ok=True)
        raise
    if model_id:
        registry.add(model_id)
    return project
