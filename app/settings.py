"""Server settings: flags (`neuronlab serve`), then NEURONLAB_* environment variables, then the
config file (`neuronlab.toml` in the data folder, or NEURONLAB_CONFIG), then the defaults below
(see README, "Configuration"; `neuronlab serve --help` lists them, `neuronlab config` shows them)."""
from __future__ import annotations

import json
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from app import resources

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = "neuronlab.toml"
PATH_KEYS = ("models_dir", "data_dir")  # relative paths in a config file are relative to the file


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEURONLAB_")

    host: str = Field("0.0.0.0", description="the address `neuronlab serve` listens on (0.0.0.0: every network; "
                      "127.0.0.1: this machine only, no student can reach it)")
    port: int = Field(8000, ge=1, le=65535, description="the port `neuronlab serve` listens on")
    max_connections: int = Field(500, ge=1, description="connections at once (more get 503 server_busy)")
    models_dir: Path = Field(resources.where("models"), description="shipped models (safetensors + cards)")
    data_dir: Path = Field(resources.default_data_dir(), description="datasets and everything users create (default: "
                           + resources.DATA_DIR_HELP + "); the optional config file neuronlab.toml is read from it")
    default_model: str = Field("digits", description="model used when a request names none")
    photo_model: str = Field("imagenet", description="the model /classify starts with (the digit model if it is not installed)")
    photo_threads: int = Field(1, ge=1, le=8, description="threads that run the photo network (behind the drawing)")
    photo_niceness: int = Field(10, ge=0, le=19, description="how far below the drawing those threads run")
    max_upload_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="request body cap")
    max_project_file_bytes: int = Field(128 * 1024 * 1024, ge=1024, description="cap on a .neuronlab project file "
                                        "imported (POST /api/projects/import; every other body: max_upload_bytes)")
    max_image_pixels: int = Field(40_000_000, ge=10_000, description="refused before decoding above this")
    torch_threads: int = Field(1, ge=1, description="threads for inference (1 keeps latency flat)")
    inference_processes: int = Field(1, ge=0, le=8, description="worker processes that read live frames (0: a thread)")
    training_jobs: int = Field(1, ge=1, description="training jobs running at once (others queue)")
    training_threads: int = Field(1, ge=1, description="torch threads per training job")
    training_niceness: int = Field(10, ge=0, le=19, description="how far below live inference a job trains: above 0 it also "
                                   "runs SCHED_IDLE (only on CPU nothing else wants); 0: normal priority")
    training_time_limit: float = Field(1800, gt=0, description="seconds one job may train")
    kfold_time_limit: float = Field(14400, gt=0, description="seconds a k-fold cross-validation job may train (its "
                                    "folds one after the other); one whose estimate is longer is refused before it starts")
    max_parameters: int = Field(3_000_000, ge=1000, description="largest trainable network, in weights")
    max_macs: int = Field(60_000_000, ge=1000, description="largest network, in multiply-adds per image")
    max_projects: int = Field(200, ge=1, description="teachable projects kept on this server")
    project_classes: int = Field(10, ge=2, le=50, description="classes per project")
    project_samples: int = Field(1000, ge=10, description="photos per project")
    admin_key: str | None = Field(None, min_length=16,
                                  description="may change and delete everything (default: a new one each start, printed in the log)")
    allowed_origins: list[str] = Field(default_factory=list, description="other origins (scheme://host:port) whose pages may "
                                       "open sockets and send changes; this server's own always may")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="other names this server may be reached by (the Host header), comma-separated, "
        "e.g. neuronlab.school.example; \"*\": any. Its own always may: localhost, its IP addresses, its host "
        "name and NEURONLAB_PUBLIC_URL's host")
    model_cache: int = Field(8, ge=1, description="trained networks kept loaded in memory (least recently used go)")
    max_queue: int = Field(12, ge=0, description="training jobs that may wait in the queue (more: 503, try later)")
    jobs_per_address: int = Field(3, ge=1, description="queued or running training jobs per network address")
    paused_release: float = Field(60, gt=0, description="seconds a paused job keeps its training slot while others wait")
    job_grace: float = Field(600, gt=0, description="seconds a finished job stays in memory (then only its record on disk)")
    expire_days: float = Field(30, ge=0, description="finished jobs' records and trained models nobody named (a name the "
                               "server made) go after this many days, unless a class session or project uses them; 0: kept for ever")
    max_decoded_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024,
                                   description="memory one decoded image may take; big JPEGs are decoded reduced")
    decode_slots: int = Field(2, ge=1, description="images decoded at once (others wait their turn)")
    public_url: str | None = Field(None, description="the address students type to reach this server, e.g. "
                                   "http://192.168.1.10:8000 (default: found from the network interfaces)")
    redis_url: str | None = Field(None, pattern=r"^(redis|rediss|unix)://",
                                  description="district mode: several servers share one Redis (live galleries) "
                                  "and one data_dir, e.g. redis://10.0.0.5:6379/0 (docs/scaling.md); unset: one server")
    database_url: str | None = Field(None, pattern=r"^postgres(ql)?://", description="district mode with replicas on "
                                     "several machines: class sessions and projects in this PostgreSQL database, e.g. "
                                     "postgresql://neuronlab@10.0.0.5/neuronlab (docs/scaling.md); unset: SQLite in data_dir")
    request_timeout: float = Field(20, gt=0, description="seconds a client has to send a request's headers and body")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def comma_separated(cls, value):
        """"a.example, b.example" (or a JSON list, as NEURONLAB_ALLOWED_ORIGINS takes)."""
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else value.split(",")
        if isinstance(value, (list, tuple)):
            value = [v.strip() for v in value if isinstance(v, str) and v.strip()] + [v for v in value if not isinstance(v, str)]
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        """Arguments (the command line's flags) over the environment over the config file over the defaults."""
        return init_settings, env_settings, ConfigFileSource(settings_cls, getattr(init_settings, "init_kwargs", {}))


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


def config_file(data_dir: Path | str | None = None) -> tuple[Path, bool]:
    """The config file to read and whether it was named (NEURONLAB_CONFIG: then it must exist), else
    neuronlab.toml in the data folder (data_dir given, NEURONLAB_DATA_DIR, or the default)."""
    named = os.environ.get("NEURONLAB_CONFIG")
    if named:
        return Path(named).expanduser(), True
    folder = data_dir or os.environ.get("NEURONLAB_DATA_DIR") or Settings.model_fields["data_dir"].default
    return Path(folder).expanduser() / CONFIG_FILE, False


def read_config(path: Path, named: bool = False) -> dict[str, Any]:
    """The settings a config file gives (setting names as keys, e.g. `max_queue = 12`)."""
    if not path.is_file():
        if named:
            raise ConfigError(f"{path}: no such config file (named by --config or NEURONLAB_CONFIG)")
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a valid TOML file: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read: {e.strerror}") from None
    for key in values:
        if key not in Settings.model_fields:
            hint = f" (did you mean {key.replace('-', '_')!r}?)" if key.replace("-", "_") in Settings.model_fields else ""
            raise ConfigError(f"{path}: unknown setting {key!r}{hint}; the settings are listed by `neuronlab serve --help`")
    for key in PATH_KEYS:
        if isinstance(values.get(key), str):
            values[key] = str((path.parent / Path(values[key]).expanduser()).resolve())
    return values


class ConfigFileSource(PydanticBaseSettingsSource):
    """The config file's settings, under the environment's."""

    def __init__(self, settings_cls, init_kwargs: dict):
        super().__init__(settings_cls)
        self.init_kwargs = init_kwargs

    def get_field_value(self, field, field_name):  # the whole file is read at once (__call__)
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return read_config(*config_file(self.init_kwargs.get("data_dir")))


@lru_cache
def get_settings() -> Settings:
    return Settings()
