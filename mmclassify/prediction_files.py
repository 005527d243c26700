"""Batch prediction files: the rows to classify (a CSV / JSON Lines file or a folder of clips) and the predictions.

Input rows keep all their columns; relative audio paths are read against the file's folder. The output has the
input columns, then `predicted_label`, `probability` (of that label), `prob_<label>` for every class,
`modalities` (what the answer rests on: `audio+text`, `audio` or `text`) and `error` (why a row could not be
classified; empty otherwise), in the order of the input.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from datasets import Dataset, load_dataset

AUDIO_EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".webm", ".aif", ".aiff"}
OUTPUT_FORMATS = (".csv", ".jsonl")


def _read_folder(folder: Path) -> Dataset:
    """Every audio file under `folder`; with a metadata.csv / metadata.jsonl (`file_name` and text columns, the
    🤗 audiofolder layout), the rows it lists instead."""
    for name in ("metadata.csv", "metadata.jsonl"):
        if (folder / name).is_file():
            rows = _read_manifest(folder / name, "file_name")
            return rows.rename_column("file_name", "audio")
    files = sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"{folder}: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) in this folder")
    return Dataset.from_dict({"audio": files})


def _read_manifest(path: Path, audio_column: str) -> Dataset:
    builder = {".csv": "csv", ".jsonl": "json", ".json": "json"}.get(path.suffix.lower())
    if builder is None:
        raise ValueError(f"{path}: give a .csv or .jsonl file, or a folder of audio files")
    rows = load_dataset(builder, data_files=str(path), split="train")
    if audio_column not in rows.column_names:
        raise ValueError(
            f"{path}: no column {audio_column!r} of audio paths (columns: {', '.join(rows.column_names)}); "
            "name it with --audio-column"
        )
    folder = path.parent
    return rows.map(
        lambda value: {audio_column: str(folder / value) if isinstance(value, str) and value.strip() else None},
        input_columns=audio_column,
        desc="reading rows",
    )


def read_rows(path: Path, audio_column: str = "audio", text_column: str | None = "text") -> Dataset:
    """The rows of a CSV / JSON Lines file or a folder (audio column `audio`), audio paths joined to the file's folder.

    A file must have `audio_column`; if `text_column` is named but absent, that is an error too (say
    `text_column=None` to classify from the audio alone): a misspelt column would otherwise quietly drop the text.
    """
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        rows = _read_folder(path)
    else:
        rows = _read_manifest(path, audio_column)
        if text_column and text_column not in rows.column_names:
            raise ValueError(
                f"{path}: no column {text_column!r} of texts (columns: {', '.join(rows.column_names)}); name it "
                "with --text-column, or give --text-column '' to classify from the audio alone"
            )
    return rows


def check_output_path(path: Path) -> None:
    """Fail before any work if the predictions could not be written."""
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise ValueError(f"{path}: the output must be a .csv or .jsonl file")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: no such folder for the output")


def prediction_columns(result: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """One result of `AudioTextClassifier.predict` as output columns."""
    if "error" in result:
        return {"predicted_label": None, "probability": None, **{f"prob_{label}": None for label in labels},
                "modalities": None, "error": result["error"]}  # fmt: skip
    return {
        "predicted_label": result["label"],
        "probability": result["score"],
        **{f"prob_{label}": result["scores"][label] for label in labels},
        "modalities": result["modalities"],
        "error": None,
    }


def write_predictions(path: Path, rows: Dataset, results: list[dict[str, Any]], labels: list[str]) -> None:
    """Write the rows with their predictions; through a temporary file, so a crash never leaves half a file."""
    records = [{**row, **prediction_columns(result, labels)} for row, result in zip(rows, results, strict=True)]
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="", encoding="utf-8") as out:
        if path.suffix.lower() == ".csv":
            writer = csv.DictWriter(out, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        else:
            out.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    os.replace(partial, path)
