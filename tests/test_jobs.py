"""The job manager with real worker processes."""
import time

import torch
from safetensors.torch import load_file

from app.settings import ROOT
from engine.stores.store import read_card
from engine.training.jobs import JobManager
from engine.training.worker import JobSpec
from tests.helpers import until


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
    name, parts = default_name(JobSpec(architecture="digit_cnn"), 0.9871)
    assert name.startswith("Digit CNN · MNIST · 98.7% · ") and len(name) <= 60
    # its parts, from which a page says it in its reader's language
    assert parts["network"] == "Digit CNN" and parts["data"] == "MNIST" and parts["accuracy"] == 0.9871
    assert abs(parts["trained"] - time.time()) < 3600 and parts["lr"] is None
    name, parts = default_name(JobSpec(architecture=[{"type": "dense", "units": 8}], dataset="fashion"), 0.5, 0.01)
    assert name.startswith("Custom network (1 layer) · Fashion-MNIST · 50.0%") and name.endswith(" (lr 0.01)")
    assert parts["network"] is None and parts["layers"] == 1 and parts["lr"] == 0.01


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
    maps, image = snaps[0]["maps"], history["image"]  # the one image form (engine.imageio.encode)
    assert (maps["channels"], maps["height"], maps["width"]) == (32, 26, 26) and maps["scale"] > 0
    assert (image["channels"], image["height"], image["width"]) == (1, 28, 28)


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


# --- the test images a page shows are the answers of the model as it is (issue 23, item 1) ---------

def _events_until(events: list, predicate, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate(list(events)):
            return
        time.sleep(0.02)
    raise AssertionError([e["type"] for e in events][-20:])


def _last_samples(events: list) -> dict:
    return [e for e in events if e["type"] == "samples"][-1]


def _answers(model, data, indices) -> list[int]:
    from engine.training.train import predict_classes
    return predict_classes(model, data.test.images[indices]).tolist()


def test_the_test_images_shown_are_answered_by_the_model_after_a_step_at_a_pause_and_at_the_end(tmp_path):
    """In the job's own loop (a thread here, so the model can be looked at while it is paused): the
    last samples event after a STEP, a pause and the end holds the model's answers at that moment,
    the end's those of the saved model. Steps follow each other well within the 1.5 s between
    streams of samples, so a timer alone would leave older answers on screen."""
    import queue
    import threading

    from engine.imageio import encode
    from engine.stores import store
    from engine.training.worker import JobRunner
    spec = JobSpec(architecture="mlp_16", optimizer="sgd", learning_rates=[0.5], train_size=1280, batch_size=64,
                   val_size=500, epochs=1, seed=3, start_paused=True)
    commands, events = queue.Queue(), []
    runner = JobRunner("ab" * 16, spec, ROOT / "data", tmp_path, commands, events.append, 600)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    paused = lambda n: lambda ev: sum(e["type"] == "status" and e["status"] == "paused" for e in ev) >= n
    _events_until(events, paused(1))
    model, data = runner.runs[0].trainer.model, runner.data
    for n in (2, 3):  # two STEPs, one right after the other
        commands.put({"action": "step"})
        _events_until(events, paused(n))
        shown = _last_samples(events)
        assert shown["step"] == n - 1 == runner.runs[0].trainer.step_count
        assert shown["guesses"] == _answers(model, data, shown["indices"])
    with commands.mutex:  # resume, then pause after exactly one more mini-batch
        commands.queue.extend([{"action": "resume"}, {"action": "pause"}])
        commands.not_empty.notify()
    _events_until(events, paused(4))
    shown = _last_samples(events)
    assert shown["step"] == runner.runs[0].trainer.step_count == 3
    assert shown["guesses"] == _answers(model, data, shown["indices"])
    commands.put({"action": "resume"})
    _events_until(events, lambda ev: ev[-1]["type"] == "done")
    thread.join(10)
    done = events[-1]
    assert done["status"] == "done" and events[-2]["type"] == "samples"  # before "done": pages stop listening then
    shown = events[-2]
    assert shown["step"] == 20 and shown["final"]
    first = shown["images"][0]  # each in the one image form (engine.imageio.encode)
    assert (first["channels"], first["height"], first["width"]) == (1, 28, 28)
    assert first["base64"] == encode(data.test.images[shown["indices"][0]])["base64"]
    mistakes = next(iter(done["results"][0]["mistakes"].values()))
    assert mistakes["images"][0] == encode(data.test.images[mistakes["indices"][0]])
    saved = store.load(tmp_path / f"{done['results'][0]['model_id']}.json").module
    assert shown["guesses"] == _answers(saved, data, shown["indices"])
    assert done["results"][0]["name"].startswith("MLP 784-16-10 · MNIST · ")  # its name, not only its id


def test_a_finished_job_ends_with_its_saved_models_answers(tmp_path):
    """Through the job manager and a worker process: the last test images before "done" are read
    by the saved model (of a race, the best one)."""
    from engine import datasets
    from engine.stores import store
    manager = JobManager(ROOT / "data", tmp_path, niceness=0)
    try:
        job = manager.submit(JobSpec(architecture="mlp_16", optimizer="sgd", learning_rates=[0.001, 0.5],
                                     train_size=640, batch_size=64, val_size=500), "s")
        done = finish(manager, job.id)
    finally:
        manager.close()
    shown = [e for e in done.events if e["type"] == "samples"][-1]
    best = max(done.results, key=lambda r: r["test_accuracy"])
    assert shown["final"] and shown["run"] == best["run"] and shown["step"] == best["steps"]
    assert shown["seq"] > max(e["seq"] for e in done.events if e["type"] == "progress")
    saved = store.load(tmp_path / f"{best['model_id']}.json").module
    data = datasets.load("mnist", ROOT / "data", val_size=500)
    assert shown["guesses"] == _answers(saved, data, shown["indices"])


def test_a_short_run_reports_its_progress_in_many_points_each_over_its_images(tmp_path):
    """However fast a run trains, its progress comes in at least PROGRESS_POINTS steps (a page's
    train curve is never one mean of the whole run), each saying how many images it averages."""
    import queue

    from engine.training.worker import PROGRESS_POINTS, JobRunner
    spec = JobSpec(architecture="mlp_16", optimizer="sgd", learning_rates=[0.1], train_size=1000, batch_size=32,
                   val_size=500, epochs=1)
    events = []
    JobRunner("cd" * 16, spec, ROOT / "data", tmp_path, queue.Queue(), events.append, 600).run()
    progress = [e for e in events if e["type"] == "progress"]
    assert len(progress) >= min(32, PROGRESS_POINTS) and progress[-1]["step"] == 32
    assert sum(e["images"] for e in progress) == 1000  # 31 batches of 32 and the last of 8


def test_a_listener_that_fails_does_not_stop_the_jobs_or_the_other_listeners(tmp_path):
    """The lifecycle tells every listener each event (engine.training.lifecycle.Jobs._tell): one
    that raises is logged, the others still hear everything and the job still ends."""
    manager = JobManager(ROOT / "data", tmp_path, niceness=0)
    heard = []

    def broken(job_id, event):
        raise RuntimeError("a listener's bug")
    manager.listeners += [broken, lambda job_id, event: heard.append(event["type"])]
    try:
        job = manager.submit(JobSpec(architecture="mlp_16", train_size=128, batch_size=64, epochs=1, val_size=100), "a")
        done = finish(manager, job.id)
    finally:
        manager.close()
    assert done.status == "done" and heard[0] == "status" and heard[-1] == "done"


def test_a_queued_job_given_a_new_rate_records_it_as_an_event_and_starts_with_it(tmp_path):
    """One rule on both transports: a rate set before a worker takes the job is an event (the
    district recorded one, one server did not) and the job starts with that rate."""
    manager = JobManager(ROOT / "data", tmp_path, max_running=1, niceness=0)
    try:
        spec = dict(architecture="mlp_16", train_size=128, batch_size=64, epochs=1, val_size=100)
        first = manager.submit(JobSpec(**spec, start_paused=True), "a")
        finish(manager, first.id, ("paused",))
        waiting = manager.submit(JobSpec(**spec), "b")
        assert manager.get(waiting.id).status == "queued"
        manager.command(waiting.id, "lr", 0.05)
        events = manager.events_since(waiting.id, 0)
        assert events[-1]["type"] == "learning_rate" and events[-1]["value"] == 0.05 and events[-1]["queued"]
        manager.command(first.id, "stop")
        done = finish(manager, waiting.id)
    finally:
        manager.close()
    assert done.results[0]["learning_rate"] == 0.05


# --- a server shutting down: each running job saves its model so far, or says it could not --------

LONG = dict(architecture="mlp_16", train_size=20000, epochs=20, val_size=500)


def started(manager, job_id):
    def stepped():
        summary = manager.get(job_id).summary(None)
        return summary if summary["status"] == "running" and summary["step"] > 0 else None
    return until(stepped, "the job trained a step")


def test_closing_with_time_to_save_keeps_each_running_jobs_model_so_far_and_says_so(tmp_path):
    manager = JobManager(ROOT / "data", tmp_path, niceness=0)
    job = manager.submit(JobSpec(**LONG, name="long"), "a")
    started(manager, job.id)
    manager.close(timeout=300)  # returns as soon as the job has saved: no figure here is a speed
    summary = manager.get(job.id).summary(None)
    assert summary["status"] == "interrupted" and "model so far was saved" in summary["error"], summary
    card = read_card(tmp_path / f"{summary['model_ids'][0]}.json")
    assert 0 < card.training["steps"] < summary["total_steps"]


def test_closing_with_no_time_to_save_says_nothing_was_saved(tmp_path):
    manager = JobManager(ROOT / "data", tmp_path, niceness=0)
    job = manager.submit(JobSpec(**LONG, name="long"), "a")
    started(manager, job.id)
    manager.close(timeout=0)
    summary = manager.get(job.id).summary(None)
    assert summary["status"] == "interrupted" and summary["model_ids"] is None, summary
    assert summary["error"] == "The server shut down before this job finished."
