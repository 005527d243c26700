"""Do the shipped recipes reach the accuracy the training issue asks for, in the time it allows? (issue 4)

Each task runs `mmclassify train` exactly as a user would (a fresh process, the recipe as shipped, TensorBoard off)
and reads the metrics it writes. Wall time covers the whole command: data preparation (from a warm 🤗 datasets cache
unless `--cold`), every fold's training, validation, checkpoints and the test pass.

- `fsdd`: leave-one-speaker-out over FSDD's six speakers, from-scratch audio encoder. Bar: mean held-out accuracy
  >= 90%, all six folds in <= 15 min on the CPU.
- `fsdd_match`: the cross-modal match/mismatch pairing of the same clips and folds, trained four times: with
  cross-attention fusion, and as the concat, audio-only and text-only ablations. Bar: cross-attention >= 90%; the
  other three within 5 points of 50%.
- `ravdess`: actor-independent RAVDESS (actors 21-24 held out), 8 emotions, from scratch. Bar: unweighted accuracy
  >= 55% in <= 20 min on the CPU.

    python benchmarks/training_accuracy.py fsdd ravdess fsdd_match [--fold 5] [--set training.epochs=5]

Needs `../shared/data/` (the development recordings). Writes `benchmarks/results/training_accuracy_<task>.json`,
with the machine, the load average before and after, and the CPU share the run got (children's CPU time / (wall time
x cores)): well below 1 means other processes took cores and the wall time is not the recipe's (or that the
run was limited to fewer threads: `OMP_NUM_THREADS=1` trains on one core, and the JSON says so).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _machine import cpu_model  # benchmarks/_machine.py

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
RESULTS = HERE / "results"

VARIANTS = {
    "cross_attention": [],
    "concat": ["model.fusion=concat"],
    "audio_only": ["model.modalities=audio"],
    "text_only": ["model.modalities=text"],
}


def train(recipe: str, output_dir: Path, overrides: list[str], fold: int | None) -> dict[str, Any]:
    """One `mmclassify train` run: its wall time, CPU share and the test metrics it wrote."""
    command = [sys.executable, "-m", "mmclassify", "train", recipe, "--output-dir", str(output_dir)]
    for override in ["training.report_to=none", *overrides]:
        command += ["--set", override]
    if fold is not None:
        command += ["--fold", str(fold)]
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPOSITORY, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    folds_file = output_dir / "folds.json"
    if folds_file.is_file():
        summary = json.loads(folds_file.read_text())
        test = {"per_fold": summary["folds"], "mean": summary["mean"], "std": summary["std"]}
    else:
        test = json.loads((output_dir / "metrics.json").read_text())["test"]
        test = {k: v for k, v in test.items() if k in ("weighted_accuracy", "unweighted_accuracy", "macro_f1")}
    return {
        "command": " ".join(command[1:]),
        "seconds": round(seconds, 1),
        "cpu_share": round(cpu_seconds / (seconds * (os.cpu_count() or 1)), 3),
        "loadavg_1min_before_after": [load_before, os.getloadavg()[0]],
        "test": test,
    }


def mean_accuracy(run: dict[str, Any], metric: str) -> float:
    return run["test"]["mean"][metric] if "mean" in run["test"] else run["test"][metric]


# The single-model tasks: the metric the bar reads, its threshold and the time allowed (seconds).
BARS = {
    "fsdd": ("weighted_accuracy", 0.90, 900, "FSDD leave-one-speaker-out, from scratch: mean held-out accuracy"),
    "ravdess": ("unweighted_accuracy", 0.55, 1200, "RAVDESS actors 21-24 held out, 8 classes, from scratch: UA"),
}


def run_task(task: str, overrides: list[str], fold: int | None, work: Path) -> dict[str, Any]:
    if task in BARS:
        metric, threshold, seconds, question = BARS[task]
        run = train(task, work / task, overrides, fold)
        return {
            "question": f"{question} >= {threshold:.2f}, <= {seconds} s on CPU",
            "run": run,
            "bar_met": mean_accuracy(run, metric) >= threshold
            and run["seconds"] <= seconds
            and fold is None
            and not overrides,
        }
    if task == "fsdd_match":
        runs = {name: train("fsdd_match", work / name, [*extra, *overrides], fold) for name, extra in VARIANTS.items()}
        accuracy = {name: mean_accuracy(run, "weighted_accuracy") for name, run in runs.items()}
        ablations_at_chance = all(abs(accuracy[name] - 0.5) <= 0.05 for name in VARIANTS if name != "cross_attention")
        return {
            "question": "FSDD match/mismatch, one speaker out: cross-attention >= 0.90, ablations within 0.05 of 0.5",
            "mean_accuracy": accuracy,
            "runs": runs,
            "bar_met": accuracy["cross_attention"] >= 0.90 and ablations_at_chance and fold is None and not overrides,
        }
    raise ValueError(f"unknown task {task!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="+", choices=["fsdd", "fsdd_match", "ravdess"])
    parser.add_argument("--fold", type=int, help="only this fold (default: all)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override, repeatable")
    parser.add_argument("--cold", action="store_true", help="prepare the data from scratch (empty datasets cache)")
    args = parser.parse_args()
    if not (REPOSITORY.parent / "shared" / "data").is_dir():
        sys.exit(f"needs the development recordings in {REPOSITORY.parent / 'shared' / 'data'}")
    RESULTS.mkdir(exist_ok=True)
    for task in args.tasks:
        with tempfile.TemporaryDirectory() as work:
            if args.cold:
                os.environ["HF_DATASETS_CACHE"] = str(Path(work) / "datasets-cache")
            result = run_task(task, args.overrides, args.fold, Path(work))
        result["settings"] = {"fold": args.fold or "all", "overrides": args.overrides, "cold_cache": args.cold}
        result["machine"] = {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset (torch uses every core)"),
            "torch_version": torch.__version__,
            "python": sys.version.split()[0],
        }
        suffix = "" if args.fold is None and not args.overrides else "_partial"
        path = RESULTS / f"training_accuracy_{task}{suffix}.json"
        path.write_text(json.dumps(result, indent=2))
        print(json.dumps({"task": task, "bar_met": result["bar_met"], "results": str(path)}), flush=True)


if __name__ == "__main__":
    main()
