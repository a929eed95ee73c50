"""How well a classifier did on labelled examples: accuracy, the confusion matrix, accuracy per
class, and which examples were misread (by cell "true,predicted"). One function for the training
lab's jobs and for transfer learning."""
from __future__ import annotations

import numpy as np


def report(true: np.ndarray, pred: np.ndarray, classes: int, per_cell: int = 16) -> dict:
    """`true` and `pred` are class indices (N,). `mistakes` maps "t,p" to the indices of at most
    `per_cell` examples of class t read as p."""
    true, pred = np.asarray(true, dtype=int), np.asarray(pred, dtype=int)
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (true, pred), 1)
    per_class = [float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None for i in range(classes)]
    mistakes = {f"{t},{p}": np.nonzero((true == t) & (pred == p))[0][:per_cell].tolist()
                for t, p in zip(*np.nonzero(confusion - np.diag(np.diag(confusion))))}
    return {"accuracy": float((true == pred).mean()) if len(true) else 0.0, "confusion": confusion.tolist(),
            "per_class": per_class, "mistakes": mistakes}
