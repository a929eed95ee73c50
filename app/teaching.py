"""Training a project's own classes: the training set is written for the worker, the job runs in
the training lab's queue, and when it ends its model and results are recorded with the project."""
from __future__ import annotations

from app.errors import ApiError
from app.owners import Caller
from app.training import Training
from engine import datasets, models
from engine.stores.db import StoreError
from engine.stores.projects import ProjectStore
from engine.stores.store import ModelRegistry
from engine.training.jobs import ACTIVE, Job
from engine.training.worker import JobSpec


class Teaching:
    def __init__(self, store: ProjectStore, training: Training, registry: ModelRegistry):
        self.store, self.training, self.registry = store, training, registry
        # noted with the training service (shared by the replicas in district mode): under the job's
        # id, what its end needs (project, held-out photo ids, photos); under "project:<id>", its job
        training.listen(self._on_event)  # after Training's own: the model is registered

    def active_job(self, project_id: str) -> dict | None:
        """The project's queued, running or paused training job, if any."""
        noted = self.training.read_note(f"project:{project_id}")
        if noted is None:
            return None
        try:
            job = self.training.get(noted["job"])
        except ApiError:  # forgotten
            return None
        return {"id": job.id, "status": job.status} if job.status in ACTIVE else None

    def with_job(self, project: dict) -> dict:
        project["job"] = self.active_job(project["id"])
        return project

    def training_set_file(self, project_id: str):
        return self.store.folder / project_id / "training-set.npz"

    def start(self, project_id: str, caller: Caller, *, epochs: int, learning_rate: float, augment: bool,
              mirror: bool, seed: int) -> tuple[Job, int, int]:
        """Queue the project's training job; the job with the numbers of training and held-out photos."""
        current = self.with_job(self.store.get(project_id))
        if current["job"]:
            raise ApiError(409, "job_conflict", f"This project is already training (job {current['job']['id']}); "
                           "wait for it or stop it.")
        data, held_out = self.store.training_set(project_id, seed)
        data_file = self.training_set_file(project_id)
        datasets.save_arrays(data_file, data)
        spec = JobSpec(dataset="project", architecture=models.PHOTO_LAYERS, optimizer="adam",
                       learning_rates=[learning_rate], batch_size=16, epochs=epochs,
                       train_size=None, val_size=len(held_out), seed=seed, augment=augment,
                       schedule="onecycle", name=current["name"], project=project_id, data_file=str(data_file),
                       mirror=mirror, weight_decay=1e-4)
        job = self.training.submit(spec, caller)
        self.training.note(job.id, {"project": project_id, "held_out": held_out, "photos": len(data.train) + len(held_out)})
        self.training.note(f"project:{project_id}", {"job": job.id})
        return job, len(data.train), len(held_out)

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
        noted = self.training.take_note(job_id)  # in district mode, the first replica to hear it
        if noted is None:
            return
        project_id, held_out, photos = noted["project"], noted["held_out"], noted["photos"]
        self.training_set_file(project_id).unlink(missing_ok=True)  # the worker has read it
        for result in event.get("results", [])[:1]:
            summary = {
                "model_id": result["model_id"], "job": job_id, "accuracy": result["test_accuracy"],
                "per_class": result["per_class"], "confusion": result["confusion"],
                "labels": self.registry.card(result["model_id"]).labels,
                "held_out": held_out, "photos": photos, "seconds": result["seconds"], "steps": result["steps"],
                "status": event["status"],
                "mistakes": {cell: [held_out[i] for i in m["indices"]] for cell, m in result["mistakes"].items()},
            }
            try:
                old = self.store.set_model(project_id, result["model_id"], summary)
            except StoreError:  # deleted while it trained: its model goes too
                old = result["model_id"]
            if old in self.registry.user_ids:
                self.registry.delete(old)
