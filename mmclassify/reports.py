"""Plots written beside a trained model: the confusion matrix and the learning curves (PNG, via matplotlib).

Figures are built with matplotlib's object-oriented API on an Agg canvas: no GUI backend is needed, and neither the
user's chosen backend nor pyplot's global state (open figures, rcParams) is touched. `*_figure` builds the figure
(inspectable in tests), `plot_*` writes it as one PNG and returns the path. Never prints; logs at DEBUG level.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

VALIDATION_METRICS = ("weighted_accuracy", "unweighted_accuracy", "macro_f1")
COUNTS_TITLE = "counts (rows: true class, columns: predicted)"
SHARES_TITLE = "row-normalised: share of each true class (rows sum to 1)"
_MANY_CLASSES = 12  # above this, smaller fonts for tick labels and cell values


def new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot state), with constrained layout; size in inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure: Figure, path: str | Path) -> Path:
    """Write `figure` as a PNG at `path`; returns the path."""
    path = Path(path)
    figure.savefig(path, dpi=100, format="png")
    logger.debug("wrote %s", path)
    return path


def row_normalised(matrix: list[list[int]]) -> np.ndarray:
    """Each row (true class) divided by its total: the share of the class predicted as each class (0 if empty)."""
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def confusion_matrix_figure(matrix: list[list[int]], labels: list[str]) -> Figure:
    """Two panels side by side: counts, and row-normalised shares; class names on both axes, values in the cells."""
    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    if counts.shape != (n, n):
        raise ValueError(f"a confusion matrix of {n} classes is {n}x{n}, not {counts.shape}")
    size = max(4.0, 0.5 * n + 2)
    figure = new_figure(2 * size, size)
    font = 8 if n <= _MANY_CLASSES else 5
    panels = ((counts, COUNTS_TITLE, "{:.0f}", None), (row_normalised(matrix), SHARES_TITLE, "{:.2f}", 1.0))
    for axis, (values, title, fmt, vmax) in zip(figure.subplots(1, 2), panels, strict=True):
        top = vmax if vmax is not None else max(float(values.max(initial=0)), 1.0)
        axis.imshow(values, cmap="Blues", vmin=0, vmax=top)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("predicted class")
        axis.set_ylabel("true class")
        axis.set_xticks(range(n), labels, rotation=90, fontsize=font)
        axis.set_yticks(range(n), labels, fontsize=font)
        for (row, column), value in np.ndenumerate(values):
            color = "white" if value > top / 2 else "black"
            axis.text(column, row, fmt.format(value), ha="center", va="center", fontsize=font, color=color)
    return figure


def plot_confusion_matrix(matrix: list[list[int]], labels: list[str], path: str | Path) -> Path:
    """Write `confusion_matrix_figure(matrix, labels)` as one PNG at `path`; returns the path."""
    return save_png(confusion_matrix_figure(matrix, labels), path)


def learning_curves_figure(history: list[dict[str, Any]]) -> Figure:
    """Training and validation loss (left), and the validation metrics (right), per epoch."""
    epochs = [entry["epoch"] for entry in history]
    figure = new_figure(10, 4)
    losses, scores = figure.subplots(1, 2)
    losses.plot(epochs, [entry["train_loss"] for entry in history], marker="o", label="training loss")
    losses.plot(epochs, [entry["validation"]["loss"] for entry in history], marker="o", label="validation loss")
    losses.set_xlabel("epoch")
    losses.set_title("loss")
    losses.legend()
    for name in VALIDATION_METRICS:
        scores.plot(epochs, [entry["validation"][name] for entry in history], marker="o", label=name)
    scores.set_xlabel("epoch")
    scores.set_ylim(0, 1)
    scores.set_title("validation metrics")
    scores.legend()
    for axis in (losses, scores):
        axis.xaxis.get_major_locator().set_params(integer=True)  # whole epochs only
    return figure


def plot_learning_curves(history: list[dict[str, Any]], path: str | Path) -> Path:
    """Write `learning_curves_figure(history)` as one PNG at `path`; returns the path.

    `history`: one item per epoch, {"epoch": int, "train_loss": float, "validation": {"loss": float,
    "weighted_accuracy": float, "unweighted_accuracy": float, "macro_f1": float}}.
    """
    return save_png(learning_curves_figure(history), path)
