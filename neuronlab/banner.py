"""What the terminal shows once the server listens: the addresses students open (and a QR code of
the first), the teacher's page, the admin key and where the data is kept."""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from neuronlab import __version__

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
EVERYWHERE = {"0.0.0.0", "::", ""}


def student_urls(host: str, port: int, public_url: str | None, lan: Sequence[str]) -> list[str]:
    """The join addresses students type: NEURONLAB_PUBLIC_URL's, else one per network address this
    server listens on (every LAN address when bound to all of them; none on 127.0.0.1)."""
    if public_url:
        return [public_url.rstrip("/") + "/join"]
    if host in LOOPBACK or host.startswith("127."):
        return []
    ips = list(lan) if host in EVERYWHERE else [host]
    return [f"http://{ip}:{port}/join" for ip in ips]


def teacher_url(host: str, port: int, public_url: str | None, lan: Sequence[str]) -> str:
    """The address of the teacher's pages: the one students use (so the session page shows the
    right join address), else this machine's own."""
    urls = student_urls(host, port, public_url, lan)
    if urls:
        return urls[0].removesuffix("/join")
    return f"http://{'127.0.0.1' if host in EVERYWHERE else host}:{port}"


def qr_text(url: str) -> str:
    """A QR code of `url` drawn with characters, for the terminal."""
    import segno

    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def render(*, host: str, port: int, public_url: str | None, lan: Sequence[str], admin_key: str | None,
           key_made: bool, data_dir: Path, config: Path | None = None, qr: bool = True) -> str:
    """The start banner. `admin_key` is shown when it was made for this run (`key_made`); a key
    the teacher set is not printed again."""
    urls = student_urls(host, port, public_url, lan)
    lines = [f"NeuronLab {__version__} is running.", ""]
    if urls:
        lines.append(f"  Students open:  {urls[0]}")
        lines += [f"                  {u}" for u in urls[1:]]
        if qr:
            lines += ["", *("  " + row for row in qr_text(urls[0]).rstrip("\n").splitlines())]
    elif host in LOOPBACK or host.startswith("127."):
        lines += [f"  Students cannot reach this server: it listens on {host} (this machine) only.",
                  "  To let them in, start it with: neuronlab serve --host 0.0.0.0"]
    else:
        lines += ["  No network address found on this machine: connect it to the school network,",
                  "  or set NEURONLAB_PUBLIC_URL to the address students type (http://192.168.1.10:8000)."]
    teacher = teacher_url(host, port, public_url, lan)
    lines += ["", f"  Teacher:        {teacher}/session   (start a class session; every page: {teacher}/)"]
    if key_made and admin_key:
        lines += [f"  Admin key:      {admin_key}",
                  "                  (X-Admin-Key: may change and delete everything; a new one each start:",
                  "                  set NEURONLAB_ADMIN_KEY or admin_key in neuronlab.toml to keep one)"]
    else:
        lines.append("  Admin key:      the one set in NEURONLAB_ADMIN_KEY or the config file (not shown)")
    lines.append(f"  Data folder:    {data_dir}   (models trained here, projects, class sessions: back it up)")
    if config is not None:
        lines.append(f"  Config file:    {config}")
    lines += ["  Stop:           Ctrl+C", ""]
    return "\n".join(lines)
