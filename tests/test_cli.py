"""The `mmclassify` command line: help, train -> evaluate -> predict, clear failures, and how it is installed."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import typer
from mmclassify_cli.main import app
from tiny_recipes import DEMO_RECIPE, TINY_TONES, write_wav
from typer.testing import CliRunner

COMMANDS = ("train", "evaluate", "predict", "explain", "push", "demo")
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1"}
TINY_DATA = "data.generator={train_size: 64, eval_size: 32, seed: 0}"


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDE, prog_name="mmclassify")


def flat(text: str) -> str:
    """Help text without the boxes rich draws and with single spaces, to search for option help in it."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def sets(*overrides: str) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """`mmclassify train recipes/demo.yaml --output-dir ... --set ...` (tiny): the folder and the printed output."""
    output_dir = tmp_path_factory.mktemp("cli") / "model"
    result = invoke("train", DEMO_RECIPE, "--output-dir", output_dir, *sets(*TINY_TONES))
    assert result.exit_code == 0, result.output
    return output_dir, result.stdout


@pytest.fixture(scope="module")
def wav(tmp_path_factory) -> Path:
    return write_wav(tmp_path_factory.mktemp("audio") / "clip.wav", 200.0)


# --- help --------------------------------------------------------------------------------------------------------


def test_top_level_help_lists_every_command():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert re.search(rf"\b{command}\b", result.stdout), command


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_lists_every_option_with_its_help(command):
    click_command = typer.main.get_command(app).commands[command]
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert click_command.params, command
    for param in click_command.params:
        assert param.help, f"{command}: {param.name} has no help text"
        assert flat(param.help) in text, f"{command} --help lacks the help of {param.name}"
        for opt in param.opts if isinstance(param, typer.core.TyperOption) else []:
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text), f"{command} --help lacks {opt}"


# --- train, evaluate, predict --------------------------------------------------------------------------------------


def test_train_prints_metrics_and_saves_the_model(trained):
    output_dir, output = trained
    assert (output_dir / "model.safetensors").is_file() and (output_dir / "metrics.json").is_file()
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert f"best epoch {metrics['best_epoch']}: validation weighted_accuracy" in output
    assert f"test: weighted_accuracy {metrics['test']['weighted_accuracy']:.4f}" in output
    assert f"model saved to {output_dir}" in output
    # --set reached the recipe: two epochs on the tiny data set
    assert len(metrics["history"]) == 2


def test_evaluate_prints_the_metrics_as_json(trained):
    output_dir, _ = trained
    result = invoke("evaluate", output_dir, DEMO_RECIPE, "--split", "test", *sets(TINY_DATA))
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["split"] == "test"
    reported = json.loads((output_dir / "metrics.json").read_text())["test"]
    for name in ("weighted_accuracy", "unweighted_accuracy", "macro_f1", "loss"):
        assert printed[name] == pytest.approx(reported[name], abs=1e-5), name


def test_predict_json_prints_a_label_and_scores_that_sum_to_one(trained, wav):
    output_dir, _ = trained
    result = invoke("predict", output_dir, "--audio", wav, "--text", "a deep tone", "--json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert set(printed["scores"]) == {"mismatch", "match"}
    assert sum(printed["scores"].values()) == pytest.approx(1.0, abs=1e-6)
    assert printed["label"] == max(printed["scores"], key=printed["scores"].get)
    assert printed["score"] == printed["scores"][printed["label"]]


def test_predict_prints_the_label_and_every_class(trained, wav):
    output_dir, _ = trained
    result = invoke("predict", output_dir, "--audio", wav, "--text", "a deep tone", "--device", "cpu")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(r"(match|mismatch) \(\d\.\d{3}\), from audio\+text", lines[0])
    assert sorted(line.split()[0] for line in lines[1:]) == ["match", "mismatch"]


# --- failures: exit status 1 and a message naming what is wrong -----------------------------------------------------


def test_predict_on_a_folder_that_is_not_a_model(tmp_path, wav):
    result = invoke("predict", tmp_path, "--audio", wav, "--text", "a low tone")
    assert result.exit_code == 1
    assert f"{tmp_path} is not an mmclassify model folder" in result.output
    assert "Traceback" not in result.output


def test_predict_on_a_missing_folder(tmp_path, wav):
    missing = tmp_path / "no-model-here"
    result = invoke("predict", missing, "--audio", wav, "--text", "a low tone")
    assert result.exit_code == 1
    assert f"{missing}: no such model folder" in result.output


def test_predict_with_a_missing_audio_file_names_it(trained, tmp_path):
    output_dir, _ = trained
    missing = tmp_path / "missing.wav"
    result = invoke("predict", output_dir, "--audio", missing, "--text", "a low tone", "--device", "cpu")
    assert result.exit_code == 1
    assert f"{missing}: no such audio file" in result.output


def test_evaluate_on_a_folder_that_is_not_a_model(tmp_path):
    result = invoke("evaluate", tmp_path, DEMO_RECIPE, *sets(TINY_DATA))
    assert result.exit_code == 1
    assert "error:" in result.output and str(tmp_path) in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.fusoin=concat", "model.fusoin"),
        ("training.epochs=ten", "'training.epochs' must be a number"),
        ("model.fusion=bogus", "fusion must be one of ('cross_attention', 'concat'), got 'bogus'"),
    ],
)
def test_train_with_a_bad_recipe_field_names_it(tmp_path, override, expected):
    result = invoke("train", DEMO_RECIPE, "--output-dir", tmp_path / "out", *sets(*TINY_TONES, override))
    assert result.exit_code == 1, result.output
    assert expected in result.output
    assert not (tmp_path / "out").exists()


def test_train_with_a_missing_recipe(tmp_path):
    result = invoke("train", tmp_path / "nope.yaml", "--output-dir", tmp_path / "out")
    assert result.exit_code == 1
    assert f"{tmp_path / 'nope.yaml'}: no such recipe file" in result.output


# --- how it is run and installed --------------------------------------------------------------------------------------


def test_python_dash_m_mmclassify_is_the_same_application(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mmclassify", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert command in result.stdout


def test_console_script_runs(tmp_path):
    script = Path(sys.executable).parent / "mmclassify"
    if not script.is_file():
        pytest.skip(f"no console script beside {sys.executable}")
    result = subprocess.run([str(script), "train", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--output-dir" in result.stdout


def test_the_distribution_installs_no_top_level_cli_module(tmp_path):
    distribution = importlib.metadata.distribution("mmclassify")
    assert set(distribution.read_text("top_level.txt").split()) == {"mmclassify", "mmclassify_cli"}
    assert not any(Path(str(f)).parts[0] == "cli" for f in distribution.files)
    owners = importlib.metadata.packages_distributions()
    assert "mmclassify" in owners["mmclassify_cli"] and "mmclassify" not in owners.get("cli", [])
    (script,) = [ep for ep in distribution.entry_points if ep.group == "console_scripts" and ep.name == "mmclassify"]
    assert script.value == "mmclassify_cli.main:main"
    # From outside the repository, `mmclassify_cli` imports and `cli` does not exist.
    probe = (
        "import importlib.util as u; print(u.find_spec('cli') is None, u.find_spec('mmclassify_cli.main') is not None)"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_the_wheel_holds_every_module_metric_and_recipe(tmp_path):
    """`pip install .` (not editable) must ship every subpackage: a package left out of pyproject's list only shows
    as an ImportError on a user's machine, since the editable install used here finds it in the tree anyway."""
    repository = Path(__file__).resolve().parents[1]
    # Built from a copy of the sources, so setuptools' `build/` folder never lands in the working tree.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "mmclassify", "cli", "recipes"):
        copy = shutil.copytree if (repository / name).is_dir() else shutil.copy2
        copy(repository / name, source / name, **({"symlinks": True} if copy is shutil.copytree else {}))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip().splitlines()[-1]}")
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("mmclassify-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    expected = {str(p.relative_to(repository)) for p in (repository / "mmclassify").rglob("*.py")}
    expected |= {f"mmclassify_cli/{p.name}" for p in (repository / "cli").glob("*.py")}
    expected |= {f"mmclassify/recipes/{p.name}" for p in (repository / "recipes").glob("*.yaml")}
    assert expected - shipped == set()
