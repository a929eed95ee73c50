"""The job manager with real worker processes."""
import time

import torch
from safetensors.torch import load_file

from app.settings import ROOT
from engine.training.jobs import JobManager
from engine.training.worker import JobSpec


def finish(manager, job_id, statuses=("done",), timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if manager.get(job_id).status in statuses:
            return manager.get(job_id)
        time.sleep(0.1)
    raise AssertionError(manager.get(job_id).status)


def test_pause_step_and_resume_give_the_same_model_as_an_uninterrupted_run(tmp_path):
    manager = JobManager(ROOT / "data", tmp_path, max_running=2, niceness=0)
    try:
        spec = dict(architecture="mnist_recipe", train_size=640, batch_size=64, epochs=1, val_size=500, seed=7)
        plain = manager.submit(JobSpec(**spec, name="plain"), "a")
        stepped = manager.submit(JobSpec(**spec, name="stepped", start_paused=True), "b")
        finish(manager, stepped.id, ("paused",))
        for _ in range(3):
            manager.command(stepped.id, "step")
            time.sleep(0.3)
            finish(manager, stepped.id, ("paused",))
        manager.command(stepped.id, "resume")
        a = finish(manager, plain.id).results[0]
        b = finish(manager, stepped.id).results[0]
    finally:
        manager.close()
    assert a["steps"] == b["steps"] == 10 and a["test_accuracy"] == b["test_accuracy"]
    wa, wb = (load_file(str(tmp_path / f"{r['model_id']}.safetensors")) for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_race_trains_each_learning_rate_on_the_same_data(tmp_path):
    manager = JobManager(ROOT / "data", tmp_path, niceness=0)
    try:
        job = manager.submit(JobSpec(architecture="mlp_16", optimizer="sgd", learning_rates=[0.001, 0.1, 50.0],
                                     train_size=640, batch_size=64, val_size=500), "c")
        done = finish(manager, job.id)
    finally:
        manager.close()
    slow, good = done.results
    assert (slow["learning_rate"], good["learning_rate"]) == (0.001, 0.1)
    assert good["test_accuracy"] > slow["test_accuracy"]
    assert [e["run"] for e in done.events if e["type"] == "run_status"] == [2]  # 50 diverged
    progress_runs = {e["run"] for e in done.events if e["type"] == "progress"}
    assert progress_runs == {0, 1, 2}


def test_trained_models_get_names_that_tell_them_apart():
    from engine.training.worker import default_name
    name = default_name(JobSpec(architecture="digit_cnn"), 0.9871)
    assert name.startswith("Digit CNN · MNIST · 98.7% · ") and len(name) <= 60
    assert default_name(JobSpec(architecture=[{"type": "dense", "units": 8}], dataset="fashion"), 0.5).startswith(
        "Custom network (1 layer) · Fashion-MNIST · 50.0%")


def test_a_conv_job_keeps_its_first_filters_over_training_time(tmp_path):
    import json

    import numpy as np
    manager = JobManager(ROOT / "data", tmp_path, niceness=0)
    try:
        job = manager.submit(JobSpec(architecture="mnist_recipe", train_size=1280, batch_size=64, epochs=1,
                                     val_size=500, name="filters"), "h")
        done = finish(manager, job.id)
    finally:
        manager.close()
    history = json.loads((tmp_path / f"{done.results[0]['model_id']}.history.json").read_text())
    snaps = history["snapshots"]
    assert [s["step"] for s in snaps] == [0, 5, 10, 15, 20]  # the start, every quarter epoch (20: the end)
    first, last = np.array(snaps[0]["weights"]), np.array(snaps[-1]["weights"])
    assert first.shape == (32, 1, 3, 3) and not np.allclose(first, last)
    saved = load_file(str(tmp_path / f"{done.results[0]['model_id']}.safetensors"))
    conv = next(v for k, v in saved.items() if v.dim() == 4)
    assert np.allclose(last, conv.numpy(), atol=1e-4)  # the last snapshot is the saved model's filters
    assert snaps[0]["map_shape"] == [32, 26, 26] and len(history["image"]) > 0


def test_a_training_job_runs_only_on_cpu_the_live_readers_leave(tmp_path):
    """Every thread of a job's process is SCHED_IDLE: a frame the reader wakes up for takes the
    core at once, where a merely niced trainer still holds it until the scheduler's next turn.
    (Waited for as a condition, not for the job to get anywhere: on a machine whose cores are
    kept busy, a SCHED_IDLE job gets no CPU at all, which is the point.)"""
    import os
    from pathlib import Path
    manager = JobManager(ROOT / "data", tmp_path)
    try:
        job = manager.submit(JobSpec(architecture="mnist_recipe", train_size=640, batch_size=64, epochs=1,
                                     val_size=500, start_paused=True), "a")
        deadline = time.time() + 120
        while time.time() < deadline and (job.process is None or not job.process.pid
                                          or _policy(job.process.pid) != os.SCHED_IDLE):
            time.sleep(0.05)  # the job's process starts at normal priority, then lowers itself first
        threads = [int(t.name) for t in Path(f"/proc/{job.process.pid}/task").iterdir()]
        policies = {os.sched_getscheduler(t) for t in threads}
    finally:
        manager.close()
    assert policies == {os.SCHED_IDLE}


def _policy(pid: int) -> int | None:
    import os
    try:
        return os.sched_getscheduler(pid)
    except OSError:  # not started yet, or gone
        return None
