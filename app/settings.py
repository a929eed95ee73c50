"""Server settings, read from NEURONLAB_* environment variables (see README, "Configuration")."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEURONLAB_")

    models_dir: Path = Field(ROOT / "models", description="shipped models (safetensors + cards)")
    data_dir: Path = Field(ROOT / "data", description="datasets and everything users create")
    default_model: str = Field("digits", description="model used when a request names none")
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="request body cap")
    max_image_pixels: int = Field(40_000_000, ge=10_000, description="refused before decoding above this")
    torch_threads: int = Field(1, ge=1, description="threads for inference (1 keeps latency flat)")
    inference_processes: int = Field(1, ge=0, le=8, description="worker processes that read live frames (0: a thread)")
    training_jobs: int = Field(1, ge=1, description="training jobs running at once (others queue)")
    training_threads: int = Field(1, ge=1, description="torch threads per training job")
    training_time_limit: float = Field(1800, gt=0, description="seconds one job may train")
    max_parameters: int = Field(3_000_000, ge=1000, description="largest trainable network, in weights")
    max_macs: int = Field(60_000_000, ge=1000, description="largest network, in multiply-adds per image")
    max_projects: int = Field(200, ge=1, description="teachable projects kept on this server")
    project_classes: int = Field(10, ge=2, le=50, description="classes per project")
    project_samples: int = Field(1000, ge=10, description="photos per project")


@lru_cache
def get_settings() -> Settings:
    return Settings()
