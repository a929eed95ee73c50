"""Images made by the tests themselves: MNIST digits re-drawn as canvas pictures, encoded files."""
from __future__ import annotations

import time
from pathlib import Path

from PIL import Image, ImageDraw

from app.settings import ROOT
from bench.common import STROKE_DIGITS, draw_digit, encode, object_photo, on_canvas, product_photo  # noqa: F401


def stroke_image(points: list[tuple[float, float]], width: int = 22, size: int = 280) -> Image.Image:
    """A polyline drawn in black on white, like the draw page's canvas."""
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).line(points, fill="black", width=width, joint="curve")
    return img


ARTIFACTS = ROOT / "test-artifacts"  # screenshots the browser tests take


def stroke(page, points):
    """Drag the real mouse through points given as fractions of the drawing pad."""
    box = page.locator("#pad").bounding_box()
    at = lambda p: (box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"])
    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*at(p), steps=8)
    page.mouse.up()


def focus_page(page):
    """Give the page the keyboard as a person does, with a click where nothing answers one: the top
    bar's corner (every page has it, it never moves). Not the body: while a page fills in, the
    body's box grows, and Playwright retries such a click with other scroll alignments, scrolling
    the page to its end (tests/test_suite_itself.py)."""
    page.locator("header.topbar").click(position={"x": 2, "y": 2})


def until(condition, what: str, limit: float = 120):
    """condition()'s first true value, asked every 0.1 s, within `limit` seconds (a bound for a
    loaded machine: the wait ends as soon as the condition holds)."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {limit} s"
        time.sleep(0.1)


def http_json(url: str, method: str = "GET", body=None, headers: dict | None = None, raw: bytes | None = None,
              ctype: str = "application/json", timeout: float = 20):
    """One request to a real server; its JSON answer (HTTP errors raise)."""
    import json
    import urllib.request
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, method=method, data=data, headers={"Content-Type": ctype, **(headers or {})})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def trained(server: str, spec: dict, headers: dict, timeout: float = 60) -> dict:
    """Start a training job on a real server and wait for it to finish; its final state."""
    import time
    job = http_json(f"{server}/api/train", "POST", spec, headers)
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = http_json(f"{server}/api/train/{job['id']}", headers=headers)
        if state["status"] == "done":
            return state
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish: {state['status']}")


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children of each of its threads, recursively), from /proc."""
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread (or the process) that just ended
            continue
        for child in children:
            found |= {int(child)} | descendants(int(child))
    return found


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie waiting for its parent does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
