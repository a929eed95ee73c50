"""The training lab's "train" curve (static/js/train-smooth.js), run in node: a mean over a window
of training images, never older than the run's last quarter without saying so (issue 23, item 2)."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent.parent / "static" / "js" / "train-smooth.js"
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is installed by scripts/setup.sh")


def smooth(points: list[dict], *args) -> dict:
    script = (f"import {{ smoothTrain }} from {json.dumps(JS.as_uri())};\n"
              f"console.log(JSON.stringify(smoothTrain({json.dumps(points)}, ...{json.dumps(list(args))})));")
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run(accuracies: list[float], images: int = 64) -> list[dict]:
    return [{"step": i + 1, "images": images, "loss": 1 - a, "accuracy": a} for i, a in enumerate(accuracies)]


def test_a_short_run_ends_at_what_it_scores_now_not_at_its_start():
    """Eight messages of a short run: 0.1 at first, 0.85 over the last quarter and more. A mean
    over messages at 0.8 ended near 0.35; a window of images ends at 0.85."""
    end = smooth(run([0.1, 0.1, 0.2, 0.4, 0.85, 0.85, 0.85, 0.85]))
    assert end["accuracy"] == pytest.approx(0.85) and not end["old"]
    assert end["since"] >= 6  # the last quarter of eight messages: two
    assert end["images"] == 128


def test_the_window_is_counted_in_images_whatever_the_messages_hold():
    many_small = smooth(run([0.5] * 100 + [0.9] * 40, images=32), 640)
    assert many_small["accuracy"] == pytest.approx(0.9) and many_small["images"] == 640
    few_large = smooth(run([0.5] * 5 + [0.9] * 2, images=320), 640)
    assert few_large["accuracy"] == pytest.approx(0.9) and few_large["images"] == 320  # 560 (a quarter) hold one
    mixed = smooth([{"step": 1, "images": 300, "loss": 1, "accuracy": 0.0},
                    {"step": 2, "images": 100, "loss": 0, "accuracy": 1.0}], 1000)
    assert mixed["accuracy"] == pytest.approx(1.0)  # a quarter of 400 images: the last 100 only


def test_one_message_older_than_the_last_quarter_is_shown_and_said_so():
    first = smooth(run([0.3]))
    assert first["accuracy"] == pytest.approx(0.3) and first["old"] and first["since"] == 0
    assert smooth([]) is None
