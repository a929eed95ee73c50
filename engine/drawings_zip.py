"""A class session's labelled drawings as a dataset another lesson or tool can read: one zip with
a PNG per drawing (the 28x28 the network read, white ink on black, as MNIST) and `labels.csv`
(file, label, label_index, guess, confidence, in_dataset, and student when asked). `in_dataset`
marks the drawings the class fine-tune learns from."""
from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
from PIL import Image

COLUMNS = ["file", "label", "label_index", "guess", "confidence", "in_dataset"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell as a formula


def cell(text: str) -> str:
    """A name as a CSV cell a spreadsheet shows as text (never runs it as a formula)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def png(pixels: bytes) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.frombuffer(pixels, np.uint8).reshape(28, 28), "L").save(out, "PNG", optimize=True)
    return out.getvalue()


def drawings_zip(drawings: list[dict], labels: list[str], names: bool = False) -> bytes:
    """The zip of every drawing that has a true label (`drawings` as SessionStore.drawings gives
    them, `labels` the model's class names); students' names only when `names`."""
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(COLUMNS + (["student"] if names else []))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for d in (d for d in drawings if d["label"] is not None):
            name = f"{labels[d['label']]}/{d['id']}.png"
            z.writestr(name, png(d["input"]))
            writer.writerow([name, labels[d["label"]], d["label"], labels[d["guess"]], round(d["confidence"], 4),
                             int(d["in_dataset"])] + ([cell(d["student"])] if names else []))
        z.writestr("labels.csv", table.getvalue())
    return out.getvalue()
