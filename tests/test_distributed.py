"""Two processes (`accelerate launch --multi_gpu --num_processes 2`, gloo on the CPU) give the result of one.

Deselect with `-m "not slow"`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_recipes import write_pitch_manifests

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: list[str], output_dir: Path, home: Path) -> str:
    env = {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",  # the CPU, with gloo, even where there is a GPU
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HOME": str(home),  # no accelerate config file or shared caches from the user's home
    }
    result = subprocess.run(
        [*command, "--output-dir", str(output_dir)], env=env, capture_output=True, text=True, timeout=500
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_two_cpu_processes_give_the_result_of_one(tmp_path):
    # Audio-only pitch classification (4 classes, chance 25%) learns in a few epochs: the comparison means something.
    recipe = write_pitch_manifests(tmp_path / "data")
    train = ["-m", "mmclassify", "train", str(recipe)]
    launch = [
        *[sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"],
        *["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"],
        *["--main_process_port", str(free_port())],
    ]
    one_log = run([sys.executable, *train], tmp_path / "one", tmp_path / "hf")
    two_log = run([*launch, *train], tmp_path / "two", tmp_path / "hf")

    # Two processes really ran as one distributed job: the training loop saw 2 processes, and only once (a failed
    # set-up gives two separate runs that each report 1 process).
    assert re.findall(r"steps on (\d+) process\(es\)", one_log) == ["1"]
    assert re.findall(r"steps on (\d+) process\(es\)", two_log) == ["2"], two_log[-3000:]

    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "metrics.json").read_text())
    for results in (one, two):
        assert results["test"]["weighted_accuracy"] >= 0.75, results["test"]  # learned: chance is 0.25
    for name in ("weighted_accuracy", "unweighted_accuracy"):
        assert abs(one["test"][name] - two["test"][name]) <= 0.01, (name, one["test"], two["test"])
    # The first epoch's mean training loss (over all processes' shares) agrees; batch norm, whose statistics are per
    # process, makes later epochs drift apart a little.
    assert two["history"][0]["train_loss"] == pytest.approx(one["history"][0]["train_loss"], abs=2e-3)
