"""Do two processes give the same result as one? (issue 2)

`accelerate launch --multi_gpu --num_processes 2 -m mmclassify train` on the CPU (gloo) must end with the same final
metrics as a single process, within 1 point of accuracy. This trains the `demo` recipe (fused model) both ways with
the same seed and compares the held-out metrics.

    python benchmarks/distributed_equivalence.py [--set training.epochs=12 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "distributed_equivalence.json"


def run(command: list[str], output_dir: Path) -> dict:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    start = time.perf_counter()
    subprocess.run(command + ["--output-dir", str(output_dir)], check=True, env=env, stdout=subprocess.DEVNULL)
    metrics = json.loads((output_dir / "metrics.json").read_text())
    return {"seconds": time.perf_counter() - start, "test": metrics["test"], "best_epoch": metrics["best_epoch"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override")
    args = parser.parse_args()
    train = ["-m", "mmclassify", "train", "demo", *[f"--set={o}" for o in args.overrides]]
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29533",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        one = run([sys.executable, *train], Path(tmp) / "one")
        two = run([*launch, *train], Path(tmp) / "two")
    difference = abs(one["test"]["weighted_accuracy"] - two["test"]["weighted_accuracy"])
    summary = {
        "question": "2 CPU processes (gloo) vs 1: final test accuracy within 1 point",
        "recipe": "demo",
        "overrides": args.overrides,
        "one_process": one,
        "two_processes": two,
        "accuracy_difference_points": 100 * difference,
        "bar_met": difference <= 0.01,
        "machine": {"cpu_count": os.cpu_count()},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("accuracy_difference_points", "bar_met")}))
    print(f"one process: {one['test']}\ntwo processes: {two['test']}")


if __name__ == "__main__":
    main()
