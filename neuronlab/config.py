"""The effective settings and where each came from: flags over the environment over the config
file over the defaults (app/settings.py holds the settings themselves)."""
from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.settings import ConfigError, Settings, config_file, read_config

SECRETS = {"admin_key"}
URL_SECRETS = {"redis_url", "database_url"}


class SettingsProblem(Exception):
    """Settings that cannot be used; the message names each key and where it came from."""


@dataclass
class Effective:
    settings: Settings
    config_path: Path
    config_named: bool
    file_values: dict[str, Any]
    flags: dict[str, Any]

    @property
    def config_found(self) -> bool:
        return self.config_path.is_file()

    def source(self, name: str) -> str:
        """Where setting `name` came from: "--flag", "NEURONLAB_X", the config file, or "default"."""
        if name in self.flags:
            return "flag --" + FLAG_NAMES.get(name, name.replace("_", "-"))
        if env_name(name) in {k.upper() for k in os.environ}:
            return env_name(name)
        if name in self.file_values:
            return str(self.config_path)
        return "default"


FLAG_NAMES = {"data_dir": "data"}


def env_name(name: str) -> str:
    return "NEURONLAB_" + name.upper()


def load(flags: dict[str, Any] | None = None) -> Effective:
    """Settings from the flags given (None: not given), the environment, the config file."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    path, named = config_file(flags.get("data_dir"))
    try:
        file_values = read_config(path, named)
        settings = Settings(**flags)
    except ConfigError as e:
        raise SettingsProblem(str(e)) from None
    except ValidationError as e:
        partial = Effective(None, path, named, file_values, flags)  # type: ignore[arg-type]
        lines = []
        for err in e.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            lines.append(f"{partial.source(key) if key in Settings.model_fields else path}: setting {key!r} "
                         f"= {err.get('input')!r}: {err['msg']}")
        raise SettingsProblem("\n".join(lines)) from None
    return Effective(settings, path, named, file_values, flags)


def shown(name: str, value: Any) -> str:
    """A setting's value as printed, secrets masked."""
    if value is None:
        return "(unset: a new one each start)" if name in SECRETS else "(unset)"
    if name in SECRETS:
        return "******** (set)"
    if name in URL_SECRETS:
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:****@", str(value))
    if isinstance(value, list):
        return ",".join(map(str, value)) or "(none)"
    return str(value)


def default_text(name: str) -> str:
    field = Settings.model_fields[name]
    value = field.get_default(call_default_factory=True)
    if name == "admin_key":
        return "a new one each start, shown in the start banner"
    return shown(name, value)


def settings_help(width: int = 100) -> str:
    """Every setting: its name (the config file's key), environment variable, default and meaning."""
    lines = ["settings (flags > environment > config file > defaults; the config file is neuronlab.toml in the",
             "data folder, or the file named by --config / NEURONLAB_CONFIG, with the names below as keys):", ""]
    for name, field in Settings.model_fields.items():
        lines.append(f"  {name} = {default_text(name)}   [{env_name(name)}]")
        lines += textwrap.wrap(field.description or "", width=width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def example_toml() -> str:
    """A config file with every setting commented out at its default."""
    out = ["# NeuronLab settings: uncomment and change what you need. The environment's NEURONLAB_*",
           "# variables and the command line's flags win over this file.", ""]
    for name, field in Settings.model_fields.items():
        out += ["# " + line for line in textwrap.wrap(field.description or "", width=96)]
        value = field.get_default(call_default_factory=True)
        if value is None:
            out.append(f"# {name} = ")
        elif isinstance(value, (bool, int, float)):
            out.append(f"# {name} = {value}")
        elif isinstance(value, list):
            out.append(f"# {name} = []")
        else:
            out.append(f"# {name} = {str(value)!r}".replace("'", '"'))
        out.append("")
    return "\n".join(out)


def report(effective: Effective) -> str:
    """`neuronlab config`: every setting's value (secrets masked) and where it came from."""
    s = effective.settings
    where = ("named" if effective.config_named else "found") if effective.config_found else "not there: optional"
    lines = [f"config file: {effective.config_path} ({where})", ""]
    rows = [(name, shown(name, getattr(s, name)), effective.source(name)) for name in Settings.model_fields]
    w1 = max(len(r[0]) for r in rows)
    w2 = min(60, max(len(r[1]) for r in rows))
    lines += [f"{n:<{w1}}  {v:<{w2}}  {src}" for n, v, src in rows]
    return "\n".join(lines)
