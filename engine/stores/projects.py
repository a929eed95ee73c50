"""Projects: classes a user teaches the network ("Santa or not?"), with their photos.

A database (`<folder>/projects.sqlite3`, or PostgreSQL in district mode) holds projects, classes and samples;
each photo is a file beside it (`<folder>/<project>/<sample>.jpg`, shrunk to at most 320 pixels,
re-encoded: what is kept is never the uploaded bytes). Every method opens its own connection, so
the store can be used from any thread; writes are transactions. Names are kept as typed (pages
show them escaped).
"""
from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import Column, Index, MetaData, RowMapping, Table, Text
from sqlalchemy.types import Double

from engine import datasets
from engine.preprocess import prepare_photo, rgb, shrink
from engine.stores import files
from engine.stores.db import BIGINT, StoreError, clean_name, insert_row, open_database, part_of, row_id

STORED_SIZE = 320       # longest side of a kept photo
MIN_PER_CLASS = 4       # photos a class needs before training (one or more are held out)
HELD_OUT = 0.2          # share of each class's photos kept out of training, to test on
ID_PATTERN = re.compile(r"^(?:[0-9a-f]{8}|[0-9a-f]{32})$")  # 128 random bits (8 hex: made by older versions)

METADATA = MetaData()
PROJECTS = Table(
    "projects", METADATA,
    Column("id", Text, primary_key=True), Column("name", Text, nullable=False),
    Column("created", Double, nullable=False), Column("model_id", Text), Column("result", Text),
    Column("owner", Text),  # the owner-token hash (added to older databases, as every later column is)
    Column("training", Text))  # the job training it, and what its end needs
CLASSES = Table(
    "classes", METADATA,
    row_id(),
    part_of("project_id", Text, "projects.id"),
    Column("name", Text, nullable=False), Column("created", Double, nullable=False),
    sqlite_autoincrement=True)  # ids are never used again, not even the last one's after a delete
SAMPLES = Table(
    "samples", METADATA,
    row_id(),
    part_of("class_id", BIGINT, "classes.id"),
    part_of("project_id", Text, "projects.id"),
    Column("source", Text, nullable=False), Column("width", BIGINT, nullable=False),
    Column("height", BIGINT, nullable=False), Column("created", Double, nullable=False),
    Index("samples_by_class", "class_id"), sqlite_autoincrement=True)


@dataclass
class Limits:
    projects: int = 200
    classes: int = 10
    samples: int = 1000  # per project


class ProjectStore:
    def __init__(self, folder: Path, limits: Limits | None = None, shared: bool = False, database_url: str | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = open_database(self.folder / "projects.sqlite3", METADATA, database_url)
        self.limits = limits or Limits()
        young = files.SHARED_PARTIAL_AGE if shared else 0.0  # shared: other servers' writes in progress stay
        for sub in [self.folder, *self.folder.iterdir()]:
            if sub.name.startswith(".import-") and time.time() - sub.stat().st_mtime >= young:
                shutil.rmtree(sub, ignore_errors=True)  # an import a crash cut short (its rows were never written)
            elif sub.is_dir():
                files.remove_partial(sub, young)  # photos a crash left half-written
        self._query, self._value = self.db.query, self.db.value

    # --- projects ---------------------------------------------------------------------------

    def create(self, name: str, classes: list[str] = (), owner: str | None = None) -> dict:
        name = clean_name(name, "project")
        names = [clean_name(c, "class") for c in classes]
        self._check_unique(names)
        if len(names) > self.limits.classes:
            raise StoreError(422, "too_many_classes", f"A project has at most {self.limits.classes} classes.", "classes")
        if self._value("SELECT COUNT(*) FROM projects") >= self.limits.projects:
            raise StoreError(409, "too_many_projects", f"This server keeps at most {self.limits.projects} "
                               "projects; delete one you no longer need.")
        project_id = secrets.token_hex(16)
        now = time.time()
        with self.db.transaction() as con:
            insert_row(con, PROJECTS, id=project_id, name=name, created=now, owner=owner)
            for n in names:
                insert_row(con, CLASSES, project_id=project_id, name=n, created=now)
        return self.get(project_id)

    def list(self, owner: str | None, everyone: bool = False) -> list[dict]:
        """The projects of one owner (hash), or of everyone."""
        rows = self._query(
            "SELECT p.id, p.name, p.created, p.model_id, "
            "(SELECT COUNT(*) FROM classes c WHERE c.project_id = p.id) AS classes, "
            "(SELECT COUNT(*) FROM samples s WHERE s.project_id = p.id) AS samples "
            "FROM projects p WHERE :everyone OR p.owner = :owner ORDER BY p.created DESC", everyone=everyone, owner=owner)
        return [dict(r) for r in rows]

    def owner(self, project_id: str) -> str | None:
        return self._project(project_id)["owner"]

    def _project(self, project_id: str) -> RowMapping:
        rows = self._query("SELECT * FROM projects WHERE id = :id", id=project_id) if ID_PATTERN.match(project_id) else []
        if not rows:
            raise StoreError(404, "project_not_found", f"There is no project {project_id!r}. "
                               "See GET /api/projects for the projects on this server.")
        return rows[0]

    def get(self, project_id: str) -> dict:
        """The project with its classes, each with its sample ids (oldest first)."""
        p = self._project(project_id)
        classes = [dict(c) for c in self._query(
            "SELECT id, name FROM classes WHERE project_id = :project ORDER BY id", project=project_id)]
        samples: dict[int, list[int]] = {c["id"]: [] for c in classes}
        for s in self._query("SELECT id, class_id FROM samples WHERE project_id = :project ORDER BY id", project=project_id):
            samples[s["class_id"]].append(s["id"])
        for c in classes:
            c["samples"] = samples[c["id"]]
            c["count"] = len(c["samples"])
        return {"id": p["id"], "name": p["name"], "created": p["created"], "classes": classes,
                "model_id": p["model_id"], "result": json.loads(p["result"]) if p["result"] else None}

    def rename(self, project_id: str, name: str) -> dict:
        self._project(project_id)
        self.db.write("UPDATE projects SET name = :name WHERE id = :id", name=clean_name(name, "project"), id=project_id)
        return self.get(project_id)

    def delete(self, project_id: str) -> str | None:
        """Delete the project, its classes and photos; returns its model id (the caller deletes it)."""
        model_id = self._project(project_id)["model_id"]
        self._delete_freeing("DELETE FROM projects WHERE id = :id", project_id,
                             lambda: shutil.rmtree(self.folder / project_id, ignore_errors=True))
        return model_id

    def _delete_freeing(self, sql: str, row_id: object, remove_files) -> None:
        """Delete rows (`sql` with an :id), then their files. On a full disk SQLite may lack room
        even to record a delete: then the files go first (freeing space) and the delete is tried again."""
        try:
            self.db.write(sql, id=row_id)
        except Exception as exc:
            if not files.is_disk_full(exc, self.folder):
                raise
            remove_files()
            self.db.write(sql, id=row_id)
        remove_files()

    def model_texts(self) -> list[str]:
        """Every project's model and results (which name each way's model), as stored."""
        return [f"{r['model_id']} {r['result']}" for r in self._query("SELECT model_id, result FROM projects")]

    def set_model(self, project_id: str, model_id: str, result: dict) -> str | None:
        """Record a newly trained model and its results; returns the model it replaces."""
        old = self._project(project_id)["model_id"]
        self.db.write("UPDATE projects SET model_id = :model, result = :result WHERE id = :id",
                      model=model_id, result=json.dumps(result), id=project_id)
        return old if old != model_id else None

    def set_training(self, project_id: str, job_id: str, held_out: list[int], photos: int) -> None:
        """Note the training job a project waits for and what its end needs (the held-out photos
        it is tested on, how many photos it had): kept here, every replica reads it."""
        noted = json.dumps({"job": job_id, "held_out": held_out, "photos": photos})
        self.db.write("UPDATE projects SET training = :noted WHERE id = :id", noted=noted, id=project_id)

    def training(self, project_id: str) -> dict | None:
        """The project's noted training job ({"job", "held_out", "photos"}), ended or not; None if none."""
        raw = self._project(project_id)["training"]
        return json.loads(raw) if raw else None

    def take_training(self, project_id: str, job_id: str) -> dict | None:
        """The noted training of `job_id`, to the first caller only (one replica records its end);
        None when another took it or the project waits for another job; a 404 StoreError when the
        project is gone (deleted while its job trained)."""
        raw = self._project(project_id)["training"]
        if not raw or json.loads(raw)["job"] != job_id:
            return None
        taken = self.db.write("UPDATE projects SET training = NULL WHERE id = :id AND training = :noted",
                              id=project_id, noted=raw)
        return json.loads(raw) if taken else None

    # --- classes ----------------------------------------------------------------------------

    def _check_unique(self, names: list[str]) -> None:
        folded = [n.casefold() for n in names]
        for n in names:
            if folded.count(n.casefold()) > 1:
                raise StoreError(409, "duplicate_class", f"There is already a class called {n!r} in this "
                                   "project; give each class a different name.", "name")

    def add_class(self, project_id: str, name: str) -> dict:
        project = self.get(project_id)
        name = clean_name(name, "class")
        self._check_unique([c["name"] for c in project["classes"]] + [name])
        if len(project["classes"]) >= self.limits.classes:
            raise StoreError(409, "too_many_classes", f"A project has at most {self.limits.classes} classes.")
        class_id = self.db.insert(CLASSES, project_id=project_id, name=name, created=time.time())
        return {"id": class_id, "name": name, "samples": [], "count": 0}

    def _class(self, project_id: str, class_id: object) -> dict:
        project = self.get(project_id)
        for c in project["classes"]:
            if c["id"] == class_id:
                return c
        names = ", ".join(f"{c['id']} ({c['name']})" for c in project["classes"]) or "none yet"
        raise StoreError(404, "class_not_found", f"This project has no class {class_id!r}. Its classes: {names}.",
                           "class_id")

    def rename_class(self, project_id: str, class_id: int, name: str) -> dict:
        self._class(project_id, class_id)
        name = clean_name(name, "class")
        others = [c["name"] for c in self.get(project_id)["classes"] if c["id"] != class_id]
        self._check_unique(others + [name])
        self.db.write("UPDATE classes SET name = :name WHERE id = :id", name=name, id=class_id)
        return self._class(project_id, class_id)

    def delete_class(self, project_id: str, class_id: int) -> None:
        doomed = self._class(project_id, class_id)["samples"]
        self._delete_freeing("DELETE FROM classes WHERE id = :id", class_id, lambda: [
            path.unlink(missing_ok=True) for sample_id in doomed for path in self._sample_files(project_id, sample_id)])

    # --- samples ----------------------------------------------------------------------------

    def sample_path(self, project_id: str, sample_id: int) -> Path:
        return self.folder / project_id / f"{int(sample_id)}.jpg"

    def check_class(self, project_id: str, class_id: object) -> None:
        """That photos can go to this class: it is given (422 no_class) and in the project (404)."""
        if class_id is None:
            raise StoreError(422, "no_class", "Say which class these photos show: send class_id "
                             "(the ids are in GET /api/projects/{id}).", "class_id")
        self._project(project_id)
        if not self._query("SELECT 1 FROM classes WHERE id = :id AND project_id = :project", id=class_id, project=project_id):
            self._class(project_id, class_id)  # raises the 404 that lists the classes

    def add_samples(self, project_id: str, class_id: object, images: list[Image.Image],
                    source: str = "upload") -> list[dict]:
        """Keep photos for a class: shrunk, RGB, re-encoded as JPEG. A batch that would pass the
        project's limit is refused whole."""
        self.check_class(project_id, class_id)
        total = self._value("SELECT COUNT(*) FROM samples WHERE project_id = :project", project=project_id)
        if total + len(images) > self.limits.samples:
            raise StoreError(409, "too_many_samples", f"This project has {total} photos; {len(images)} more "
                             f"would pass the {self.limits.samples} one project may keep. Delete some first.")
        (self.folder / project_id).mkdir(exist_ok=True)
        photos = [rgb(shrink(img, STORED_SIZE)) for img in images]
        kept, written = [], []
        try:  # one transaction: every row and every file of the batch appear together, or none does
            with self.db.transaction() as con:
                for photo in photos:
                    sample_id = insert_row(con, SAMPLES, class_id=class_id, project_id=project_id, source=source,
                                           width=photo.width, height=photo.height, created=time.time())
                    path = self.sample_path(project_id, sample_id)
                    files.write_with(path, lambda tmp, p=photo: p.save(tmp, "JPEG", quality=90))
                    written.append(path)
                    kept.append({"id": sample_id, "class_id": class_id, "width": photo.width,
                                 "height": photo.height})
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return kept

    def add_sample(self, project_id: str, class_id: object, img: Image.Image, source: str = "upload") -> dict:
        return self.add_samples(project_id, class_id, [img], source)[0]

    def delete_sample(self, project_id: str, sample_id: int) -> None:
        self._sample(project_id, sample_id)
        self._delete_freeing("DELETE FROM samples WHERE id = :id", sample_id, lambda: [
            path.unlink(missing_ok=True) for path in self._sample_files(project_id, sample_id)])

    def _sample(self, project_id: str, sample_id: int) -> RowMapping:
        self._project(project_id)
        rows = self._query("SELECT * FROM samples WHERE id = :id AND project_id = :project", id=sample_id, project=project_id)
        if not rows:
            raise StoreError(404, "sample_not_found", f"Project {project_id} has no photo {sample_id}.")
        return rows[0]

    def sample_file(self, project_id: str, sample_id: int) -> Path:
        self._sample(project_id, sample_id)
        return self.sample_path(project_id, sample_id)

    # --- a whole project at once (a .neuronlab file: engine.stores.bundle) ------------------------

    def sources(self, project_id: str) -> dict[int, str]:
        """Each photo's source (upload or webcam), by sample id."""
        return {r["id"]: r["source"] for r in self._query(
            "SELECT id, source FROM samples WHERE project_id = :project", project=project_id)}

    def insert_whole(self, project_id: str, name: str, owner: str | None,
                     classes: list[tuple[str, list[tuple[bytes, str, int, int]]]], model_id: str | None,
                     result_for) -> dict:
        """A new project with its classes and photos ((JPEG bytes, source, width, height), already
        checked and kept as given), in one transaction: its photos are written to a temporary
        folder that becomes the project's only once every row is in. `result_for(sample ids per
        class)` gives its result (or None). On any error nothing remains, neither rows nor files."""
        if not ID_PATTERN.match(project_id):
            raise ValueError(f"project id {project_id!r} is not 32 hex digits")
        temporary, final = self.folder / f".import-{project_id}", self.folder / project_id
        now = time.time()
        try:
            with self.db.transaction() as con:
                if con.exec_driver_sql("SELECT COUNT(*) FROM projects").scalar() >= self.limits.projects:
                    raise StoreError(409, "too_many_projects", f"This server keeps at most {self.limits.projects} "
                                     "projects; delete one you no longer need.")
                insert_row(con, PROJECTS, id=project_id, name=name, created=now, owner=owner, model_id=model_id)
                temporary.mkdir()
                ids = []
                for class_name, photos in classes:
                    class_id = insert_row(con, CLASSES, project_id=project_id, name=class_name, created=now)
                    ids.append([])
                    for data, source, width, height in photos:
                        sample_id = insert_row(con, SAMPLES, class_id=class_id, project_id=project_id, source=source,
                                               width=width, height=height, created=now)
                        files.write_bytes(temporary / f"{int(sample_id)}.jpg", data)
                        ids[-1].append(sample_id)
                result = result_for(ids)
                if result is not None:
                    con.execute(PROJECTS.update().where(PROJECTS.c.id == project_id).values(result=json.dumps(result)))
                temporary.rename(final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            raise
        return self.get(project_id)

    # --- training ---------------------------------------------------------------------------

    def split(self, project_id: str, seed: int = 0) -> tuple[list[str], list[tuple[int, int]], list[tuple[int, int]]]:
        """The class names, and (sample id, class index) pairs split per class into training and
        held-out photos (HELD_OUT of each, at least one), the same for the same seed and photos:
        every way of training a project is tested on the same held-out photos."""
        project = self.get(project_id)
        classes = project["classes"]
        if len(classes) < 2:
            raise StoreError(422, "too_few_classes", "A project needs at least two classes to learn "
                               "to tell apart; add another class.", "classes")
        short = [f"{c['name']!r} has {c['count']}" for c in classes if c["count"] < MIN_PER_CLASS]
        if short:
            raise StoreError(422, "too_few_samples", f"Each class needs at least {MIN_PER_CLASS} photos "
                               f"(some are kept aside to test on): {'; '.join(short)}. Add photos to "
                               "these classes.", "samples")
        rng = np.random.default_rng(seed)
        train, test = [], []
        for label, c in enumerate(classes):
            ids = rng.permutation(c["samples"]).tolist()
            n_test = max(1, round(HELD_OUT * len(ids)))
            test += [(i, label) for i in ids[:n_test]]
            train += [(i, label) for i in ids[n_test:]]
        return [c["name"] for c in classes], train, test

    def training_set(self, project_id: str, seed: int = 0) -> tuple[datasets.Dataset, list[int]]:
        """The photos prepared as the small CNN reads them (N, 3, 32, 32) uint8, split as `split`
        does; and the held-out sample ids in the order of the test split."""
        names, train, test = self.split(project_id, seed)
        split = lambda pairs: datasets.Split(self._prepared([i for i, _ in pairs], project_id),
                                             np.array([label for _, label in pairs], dtype=np.uint8))
        data = datasets.Dataset(name=f"project:{project_id}", labels=tuple(names),
                                train=split(train), val=split(test), test=split(test))
        return data, [i for i, _ in test]

    def features_path(self, project_id: str, sample_id: int, base: str) -> Path:
        return self.folder / project_id / f"{int(sample_id)}.{base}.f32"

    def features(self, project_id: str, sample_ids: list[int], base: str, compute) -> np.ndarray:
        """Each photo's features from the frozen network `base` (N, F) float32: read from the file
        kept beside the photo, or computed now by `compute(list of RGB images) -> (n, F)` for the
        photos that have none yet, and kept (each file whole or not at all)."""
        known = {}
        for sample_id in sample_ids:
            path = self.features_path(project_id, sample_id, base)
            if path.is_file():
                known[sample_id] = np.frombuffer(path.read_bytes(), dtype="<f4")
        sizes = [len(v) for v in known.values()]
        size = max(set(sizes), key=sizes.count) if sizes else None
        known = {i: v for i, v in known.items() if len(v) == size}  # a file of another size: computed again
        missing = [i for i in sample_ids if i not in known]
        if missing:
            images = []
            for sample_id in missing:
                with Image.open(self.sample_path(project_id, sample_id)) as img:
                    images.append(img.convert("RGB"))
            for sample_id, row in zip(missing, compute(images)):
                row = np.ascontiguousarray(row, dtype="<f4")
                files.write_bytes(self.features_path(project_id, sample_id, base), row.tobytes())
                known[sample_id] = row
        return np.stack([known[i] for i in sample_ids]) if sample_ids else np.zeros((0, 0), np.float32)

    def _sample_files(self, project_id: str, sample_id: int) -> list[Path]:
        """The photo and every features file kept for it."""
        folder = self.folder / project_id
        return [self.sample_path(project_id, sample_id), *folder.glob(f"{int(sample_id)}.*.f32")]

    def _prepared(self, sample_ids: list[int], project_id: str) -> np.ndarray:
        out = []
        for sample_id in sample_ids:
            with Image.open(self.sample_path(project_id, sample_id)) as img:
                out.append(np.rint(prepare_photo(img).input * 255).astype(np.uint8))
        return np.stack(out)

    # --- copies -----------------------------------------------------------------------------

    def copy(self, project_id: str, owner: str | None) -> dict:
        """A new project of `owner` with the same name, classes and photos (new ids; each photo's
        file and its kept features copied, so that training the copy by transfer is quick). It
        starts untrained: the model is not copied, the new owner trains their own."""
        source = self._project(project_id)
        if self._value("SELECT COUNT(*) FROM projects") >= self.limits.projects:
            raise StoreError(409, "too_many_projects", f"This server keeps at most {self.limits.projects} "
                               "projects; delete one you no longer need.")
        copy_id, now = secrets.token_hex(16), time.time()
        folder, written = self.folder / copy_id, []
        classes = self._query("SELECT id, name FROM classes WHERE project_id = :project ORDER BY id", project=project_id)
        samples = self._query("SELECT * FROM samples WHERE project_id = :project ORDER BY id", project=project_id)
        try:  # one transaction: the copy appears whole, or not at all (its files go with it)
            with self.db.transaction() as con:
                insert_row(con, PROJECTS, id=copy_id, name=source["name"], created=now, owner=owner)
                folder.mkdir(exist_ok=True)
                for c in classes:
                    class_id = insert_row(con, CLASSES, project_id=copy_id, name=c["name"], created=now)
                    for s in (s for s in samples if s["class_id"] == c["id"]):
                        if not self.sample_path(project_id, s["id"]).is_file():
                            continue  # a photo whose file is gone is not copied
                        sample_id = insert_row(con, SAMPLES, class_id=class_id, project_id=copy_id, source=s["source"],
                                               width=s["width"], height=s["height"], created=now)
                        for path in self._sample_files(project_id, s["id"]):
                            target = folder / f"{sample_id}{path.name[len(str(s['id'])):]}"
                            files.write_bytes(target, path.read_bytes())
                            written.append(target)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self.get(copy_id)
