"""Does a model trained with modality dropout still answer well when a modality is missing? (issue 5)

The task: FSDD spoken digits with a noisy transcript, as a speech recogniser would give it: the spoken digit's word
with probability 0.6, otherwise another digit's word at random. Audio alone and text alone each say something
about the digit; together they say more. Speaker theo is held out (`--fold 5` of the fsdd recipe's
leave-one-speaker-out split). The same recipe is trained twice, without and with `training.modality_dropout`, and
each model classifies theo's clips three ways through `AudioTextClassifier`: with both modalities, with the text
missing, and with the audio missing.

    python benchmarks/missing_modality.py [--dropout 0.3] [--set training.epochs=5]

Needs `../shared/data/fsdd`. Writes `benchmarks/results/missing_modality.json`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _machine import cpu_model  # benchmarks/_machine.py

from mmclassify.inference import AudioTextClassifier

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
FSDD = REPOSITORY.parent / "shared" / "data" / "fsdd"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
HELD_OUT = ("theo", 5)  # the speaker, and the fsdd recipe's fold that holds it out
TRANSCRIPT_ACCURACY = 0.6


def noisy_manifest(path: Path, seed: int = 0) -> list[dict]:
    """FSDD's rows with absolute audio paths and a transcript that is right with probability 0.6."""
    rng = random.Random(seed)
    with (FSDD / "manifest.csv").open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["path"] = str(FSDD / row["path"])
        right = rng.random() < TRANSCRIPT_ACCURACY
        row["text"] = row["transcript"] if right else rng.choice([w for w in WORDS if w != row["transcript"]])
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def train(manifest: Path, output_dir: Path, dropout: float, overrides: list[str]) -> float:
    settings = [
        "data.source=manifest",
        f"data.path={manifest}",
        "data.audio_column=path",
        "data.text_column=text",
        "model.modalities=audio+text",
        f"training.modality_dropout={dropout}",
        "training.report_to=none",
        *overrides,
    ]
    command = [sys.executable, "-m", "mmclassify", "train", "fsdd", "--output-dir", str(output_dir)]
    command += ["--fold", str(HELD_OUT[1])] + [arg for s in settings for arg in ("--set", s)]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPOSITORY, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def accuracy(clf: AudioTextClassifier, rows: list[dict], drop: str | None) -> float:
    pairs = [
        {"audio": None if drop == "audio" else row["path"], "text": None if drop == "text" else row["text"]}
        for row in rows
    ]
    results = clf.predict(pairs, batch_size=32, errors="raise")
    return sum(r["label"] == row["label"] for r, row in zip(results, rows, strict=True)) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dropout", type=float, default=0.3, help="modality dropout of the second model")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override, repeatable")
    args = parser.parse_args()
    if not FSDD.is_dir():
        sys.exit(f"needs the development recordings in {FSDD}")
    results = {}
    with tempfile.TemporaryDirectory() as work:
        manifest = Path(work) / "fsdd_noisy_transcripts.csv"
        rows = [row for row in noisy_manifest(manifest) if row["speaker"] == HELD_OUT[0]]
        for dropout in (0.0, args.dropout):
            model_dir = Path(work) / f"dropout-{dropout}"
            seconds = train(manifest, model_dir, dropout, args.overrides)
            clf = AudioTextClassifier.from_pretrained(model_dir)
            results[f"modality_dropout={dropout}"] = {
                "train_seconds": round(seconds, 1),
                "test_accuracy": {
                    "audio+text": accuracy(clf, rows, None),
                    "audio only (text missing)": accuracy(clf, rows, "text"),
                    "text only (audio missing)": accuracy(clf, rows, "audio"),
                },
            }
            print(json.dumps({f"modality_dropout={dropout}": results[f"modality_dropout={dropout}"]}), flush=True)
    report = {
        "question": "accuracy on a held-out speaker with both modalities, and with one missing",
        "task": f"FSDD digits + transcripts right with p={TRANSCRIPT_ACCURACY}; speaker {HELD_OUT[0]} held out",
        "transcript_accuracy_on_test": sum(r["text"] == r["transcript"] for r in rows) / len(rows),
        "results": results,
        "settings": {"overrides": args.overrides},
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_version": torch.__version__},
    }
    path = HERE / "results" / "missing_modality.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
