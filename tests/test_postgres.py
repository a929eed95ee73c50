"""Class sessions and projects on PostgreSQL (NEURONLAB_DATABASE_URL: district mode with replicas
on several machines): a real server from Debian's postgresql, started here; the sessions' and
projects' own tests run again on it, and two replicas with data folders of their own share
sessions through it."""
from __future__ import annotations

import inspect
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests import test_projects, test_sessions
from tests.conftest import OWNER, free_port, launch, stop
from tests.helpers import http_json

BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None) if Path("/usr/lib/postgresql").is_dir() else None
pytestmark = pytest.mark.skipif(BIN is None, reason="these tests need Debian's postgresql")


@pytest.fixture(scope="module")
def postgres():
    proc, url, folder = start_postgres()
    yield url
    stop_postgres(proc, folder)


def as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root


def stop_postgres(proc: subprocess.Popen, folder: Path, mode: str = "fast") -> None:
    """pg_ctl stop (immediate: as a crash would, its connections cut); the folder removed unless
    the server is only being killed."""
    subprocess.run([*as_postgres(), str(BIN / "pg_ctl"), "-D", str(folder / "db"), "stop", "-m", mode, "-w"],
                   capture_output=True, timeout=30)
    proc.wait(15)
    if mode == "fast":
        shutil.rmtree(folder, ignore_errors=True)


def start_postgres() -> tuple[subprocess.Popen, str, Path]:
    """A throwaway PostgreSQL server (trust authentication on 127.0.0.1, no fsync): its process,
    base URL and folder."""
    folder = Path(tempfile.mkdtemp(prefix="neuronlab-pg-"))
    as_user = as_postgres()
    if as_user:  # the folder is the postgres user's
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
    subprocess.run([*as_user, str(BIN / "initdb"), "-D", str(folder / "db"), "-A", "trust", "-U", "neuronlab",
                    "--no-sync"], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([*as_user, str(BIN / "postgres"), "-D", str(folder / "db"), "-p", str(port), "-k", str(folder),
                             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                            stdout=subprocess.DEVNULL, stderr=(Path(tempfile.gettempdir()) / "neuronlab-pg.log").open("ab"))
    import psycopg
    url = f"postgresql://neuronlab@127.0.0.1:{port}"
    for _ in range(150):
        try:
            psycopg.connect(url + "/postgres").close()
            break
        except psycopg.OperationalError:
            time.sleep(0.1)
    else:
        raise RuntimeError("postgres did not start")
    return proc, url, folder


def fresh_database(base: str) -> str:
    import psycopg
    name = f"t{time.time_ns()}"
    with psycopg.connect(base + "/postgres", autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


@pytest.fixture
def pg_settings(settings, postgres):
    return settings.model_copy(update={"database_url": fresh_database(postgres)})


@pytest.fixture
def pg_client(pg_settings):
    with TestClient(create_app(pg_settings), headers={"X-Owner-Token": OWNER}) as c:
        yield c


AGAIN = [test_sessions.test_a_session_from_join_to_gallery, test_sessions.test_students_cannot_act_as_the_teacher,
         test_sessions.test_bad_input_is_explained, test_sessions.test_fine_tuning_learns_the_class_handwriting,
         test_sessions.test_ending_deletes_drawings_unless_kept_and_sessions_survive_a_restart,
         test_sessions.test_two_students_called_bob_are_told_apart,
         test_projects.test_two_distinct_classes_train_to_high_held_out_accuracy_and_survive_a_restart,
         test_projects.test_class_and_sample_deletion,
         test_projects.test_an_older_database_gains_the_newer_columns_and_keeps_its_rows,
         test_projects.test_servers_starting_together_make_the_tables_once_and_share_them]


@pytest.mark.parametrize("test", AGAIN, ids=[t.__name__ for t in AGAIN])
def test_the_stores_tests_again_on_postgres(test, pg_client, pg_settings):
    given = {"client": pg_client, "settings": pg_settings}
    test(**{name: given[name] for name in inspect.signature(test).parameters})


def test_ids_past_postgres_integers_are_refused_not_a_500(pg_client):
    """SQLite's integers and the API's ids are 64-bit; PostgreSQL's INTEGER is 32: the columns are BIGINT."""
    session = pg_client.post("/api/sessions", json={}).json()
    student = pg_client.post(f"/api/sessions/{session['code']}/students", json={"name": "Ada"}).json()
    for drawing_id in (2**31, 2**63 - 1):
        answer = pg_client.put(f"/api/sessions/{session['code']}/drawings/{drawing_id}/label", json={"label": 1},
                               headers={"X-Student-Key": student["student_key"]})
        assert answer.status_code == 404, answer.text


def test_two_replicas_with_folders_of_their_own_share_sessions_through_postgres(tmp_path, postgres):
    """No shared SQLite: replica A and B keep their own data folders; the session, its students and
    drawings are in PostgreSQL, so B's teacher sees what A's students did."""
    url = fresh_database(postgres)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, url_a = launch(tmp_path / "a", {"NEURONLAB_DATABASE_URL": url})
    b, url_b = launch(tmp_path / "b", {"NEURONLAB_DATABASE_URL": url})
    try:
        session = http_json(f"{url_a}/api/sessions", "POST", {}, {"X-Owner-Token": OWNER})
        ada = http_json(f"{url_a}/api/sessions/{session['code']}/students", "POST", {"name": "Ada"})
        from tests.district import drawing_request
        drawn = drawing_request(url_a, session["code"], ada["student_key"], "7")
        gallery = http_json(f"{url_b}/api/sessions/{session['code']}/gallery",
                            headers={"X-Teacher-Key": session["teacher_key"]})
        assert [d["id"] for d in gallery["drawings"]] == [drawn["id"]] and gallery["students"] == 1
        assert not list((tmp_path / "b").glob("sessions/*.sqlite3"))  # nothing of it on B's disk
    finally:
        stop(a)
        stop(b)


def test_a_lost_database_is_a_503_and_the_server_goes_on(settings):
    """PostgreSQL stops (kill -9) under a running server: requests get a 503 that says what
    happened, never a 500; the pages that need no database still answer."""
    proc, url, folder = start_postgres()
    try:
        with TestClient(create_app(settings.model_copy(update={"database_url": fresh_database(url)})),
                        headers={"X-Owner-Token": OWNER}) as client:
            session = client.post("/api/sessions", json={}).json()
            stop_postgres(proc, folder, "immediate")
            for method, path in (("GET", f"/api/sessions/{session['code']}"), ("POST", "/api/sessions"),
                                 ("GET", "/api/projects")):
                answer = client.request(method, path, json={} if method == "POST" else None)
                assert answer.status_code == 503, answer.text
                assert answer.json()["error"] == "database_unavailable" and "PostgreSQL" in answer.json()["message"]
            assert client.get("/api/models").status_code == 200
    finally:
        stop_postgres(proc, folder)
