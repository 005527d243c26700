"""Sharing a trained model through the Hub: what `push` uploads, the model card, and loading the pushed model back,
with mmclassify and without it (remote code), from a Hub-compatible server on 127.0.0.1 (tests/hub_server.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile
import torch
import transformers.utils.hub
from hub_server import HubServer
from huggingface_hub import ModelCard, constants
from mmclassify_cli.main import app
from safetensors.torch import load_file, save_file
from tiny_recipes import DEMO_RECIPE, TINY_TONES, tone_clip
from transformers import AutoModelForSequenceClassification, AutoProcessor, pipeline
from typer.testing import CliRunner

from mmclassify import AudioTextForSequenceClassification, AudioTextProcessor
from mmclassify.data.recipe import load_recipe
from mmclassify.hub import AUTO_MAP, PICKLE_SUFFIXES, model_code, push_to_hub
from mmclassify.inference import AudioTextClassifier
from mmclassify.metrics import METRIC_NAMES
from mmclassify.training import train

WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1"}

# Run in a fresh interpreter: mmclassify is made unimportable (it is installed here, editable, so importable from
# anywhere), then the pushed model is loaded from the server by transformers alone: first without
# trust_remote_code (must be refused), then with it, on the inputs saved by the test; then the model card's own
# snippet runs on a waveform. Arguments: repo id, inputs file, waveform file, output file.
WITHOUT_MMCLASSIFY = r"""
import importlib.abc
import re
import sys


class NoMmclassify(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("mmclassify", "mmclassify_cli"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NoMmclassify())
try:
    import mmclassify  # noqa: F401
except ImportError:
    print("mmclassify is not importable")
else:
    sys.exit("mmclassify is importable")

import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification

repo_id, inputs_file, waveform_file, output_file = sys.argv[1:]
try:
    AutoModelForSequenceClassification.from_pretrained(repo_id)
except ValueError as err:
    print("refused without trust_remote_code:", err)
else:
    sys.exit("the model loaded without trust_remote_code")

model = AutoModelForSequenceClassification.from_pretrained(repo_id, trust_remote_code=True).eval()
print("model class from", type(model).__module__)
with torch.no_grad():
    logits = model(**load_file(inputs_file)).logits

card = ModelCard.load(repo_id).text
snippet = re.findall(r"```python\n(.*?)```", card, flags=re.S)[1]
namespace = {"waveform": load_file(waveform_file)["waveform"].numpy()}
exec(snippet, namespace)
save_file({"logits": logits, "snippet_logits": namespace["logits"]}, output_file)
print("mmclassify modules loaded:", [name for name in sys.modules if name.startswith("mmclassify")])
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny fused model trained two epochs on the tones data (with checkpoints/ and logs/, which stay home)."""
    output_dir = tmp_path_factory.mktemp("tones-model")
    train(load_recipe(DEMO_RECIPE, TINY_TONES), output_dir)
    return output_dir


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Iterator[HubServer]:
    """A Hub-compatible server; huggingface_hub and transformers talk to it, with a fresh cache and a (fake) token."""
    server = HubServer(tmp_path / "hub-server").start()
    home = tmp_path / "hf-home"
    env = {"HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": "fake", "HF_HOME": str(home)}
    env |= {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}  # a CI's proxy must not see it
    for name, value in {**env, "HF_HUB_CACHE": str(home / "hub")}.items():
        monkeypatch.setenv(name, value)  # for the subprocesses
    # This process imported huggingface_hub long ago: patch the values it read from the environment then, and
    # transformers' shared HfApi client, made with the endpoint of its time.
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(transformers.utils.hub, "_hf_api", None)
    yield server
    server.stop()


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDE, prog_name="mmclassify")


def batch(processor: AudioTextProcessor) -> dict[str, torch.Tensor]:
    """Two clips of different lengths (so one is padded) with their texts."""
    audio = [tone_clip(200.0), tone_clip(900.0, seconds=0.3)]
    return dict(processor(audio=audio, text=["a deep tone", "you hear a very high beep"], sampling_rate=16000))


def local_logits(model_dir: Path, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return AudioTextForSequenceClassification.from_pretrained(model_dir).eval()(**inputs).logits


def stored_files(hub: HubServer, repo_id: str, revision: str = "main") -> set[str]:
    snapshot = hub.snapshot(repo_id, revision)
    return {path.relative_to(snapshot).as_posix() for path in snapshot.rglob("*") if path.is_file()}


# --- what is uploaded ------------------------------------------------------------------------------------------


def test_push_uploads_model_processor_reports_card_and_code_but_no_checkpoints(trained, hub):
    url = push_to_hub(trained, "org/tones")

    assert url.startswith(f"{hub.url}/org/tones/commit/")
    assert hub.repos["org/tones"]["private"] is False
    files = stored_files(hub, "org/tones")
    expected = {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "tokenizer_config.json"}
    expected |= {"README.md", "metrics.json", "recipe.yaml", "run_info.json", "confusion_matrix.png"}
    expected |= {"learning_curves.png", "configuration.py", "audio_text.py", "spectrogram_cnn.py", *model_code()}
    assert expected <= files, expected - files
    assert (trained / "checkpoints").is_dir() and (trained / "logs").is_dir()  # there, and left out:
    assert not [name for name in files if name.startswith(("checkpoints/", "logs/"))]
    assert not [name for name in files if name.endswith(PICKLE_SUFFIXES)]
    stored = hub.snapshot("org/tones")
    assert (stored / "model.safetensors").read_bytes() == (trained / "model.safetensors").read_bytes()
    config = json.loads((stored / "config.json").read_text())
    assert config.pop("auto_map") == AUTO_MAP
    assert config == json.loads((trained / "config.json").read_text())
    for name in model_code():
        # Flat in the repository: single-dot relative imports only, and nothing from mmclassify.
        code = (stored / name).read_text()
        assert not re.search(r"^\s*from \.\.", code, flags=re.M), name
        assert not re.search(r"^\s*(from|import) mmclassify", code, flags=re.M), name
    assert not (trained / "README.md").exists()  # the card goes into the upload only


def test_push_refuses_a_folder_with_pickles(trained, hub, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained, folder, ignore=shutil.ignore_patterns("checkpoints", "logs"))
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ValueError, match=rf"{re.escape(str(folder))} holds pickle files \(pytorch_model.bin\)"):
        push_to_hub(folder, "org/pickled")
    assert hub.repos == {}  # refused before anything was sent


# --- the model card --------------------------------------------------------------------------------------------


def test_model_card_states_task_labels_data_metrics_encoders_limits_and_usage(trained, hub):
    push_to_hub(trained, "org/tones")
    card = ModelCard.load("org/tones")  # as the server stored it
    metrics = json.loads((trained / "metrics.json").read_text())

    assert card.data.library_name == "mmclassify"
    results = {(result.dataset_split, result.metric_type): result for result in card.data.eval_results}
    assert {key: result.metric_value for key, result in results.items()} == {
        (split, name): metrics[split][name] for split in ("test", "validation") for name in METRIC_NAMES
    }
    assert {result.dataset_type for result in results.values()} == {"tones"}
    text = card.text
    assert "`mismatch`" in text and "`match`" in text
    for split in ("test", "validation"):
        assert f"| {split} | " + " | ".join(f"{metrics[split][name]:.4f}" for name in METRIC_NAMES) + " |" in text
    assert "| split | weighted_accuracy | unweighted_accuracy | macro_f1 |" in text
    assert "mmclassify's built-in tones" in text and "recipe.yaml" in text
    assert "audio encoder: `spectrogram-cnn`, trained from scratch; model type `spectrogram-cnn`" in text
    assert "text encoder: `scratch-bert`, trained from scratch; model type `bert`" in text
    assert "## Intended use and limits" in text and "accuracy on other corpora" in text
    assert 'AudioTextClassifier.from_pretrained("org/tones")' in text
    assert 'AutoModelForSequenceClassification.from_pretrained("org/tones", trust_remote_code=True)' in text


# --- loading it back -------------------------------------------------------------------------------------------


def test_pushed_model_loads_back_through_mmclassify_with_the_same_logits(trained, hub, tmp_path, monkeypatch):
    push_to_hub(trained, "org/tones")
    classifier = AudioTextClassifier.from_pretrained("org/tones", device="cpu")

    inputs = batch(AudioTextProcessor.from_pretrained(trained))
    for name, tensor in batch(classifier.processor).items():
        torch.testing.assert_close(tensor, inputs[name], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(classifier.model(**inputs).logits, local_logits(trained, inputs))
    # mmclassify's own classes, not the repository's code: it never asks for trust_remote_code.
    assert type(AutoModelForSequenceClassification.from_pretrained("org/tones")) is AudioTextForSequenceClassification
    assert isinstance(AutoProcessor.from_pretrained("org/tones"), AudioTextProcessor)

    # The card's snippet, as written.
    monkeypatch.chdir(tmp_path)
    soundfile.write(tmp_path / "clip.wav", tone_clip(200.0), 16000)
    snippet = re.findall(r"```python\n(.*?)```", ModelCard.load("org/tones").text, flags=re.S)[0]
    namespace = {}
    exec(snippet, namespace)
    assert namespace["classifier"].labels == ["mismatch", "match"]

    # `mmclassify predict` and the pipeline take the Hub id too.
    expected = classifier(str(tmp_path / "clip.wav"), "a deep tone")["scores"]
    result = invoke("predict", "org/tones", "--audio", tmp_path / "clip.wav", "--text", "a deep tone", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scores"] == pytest.approx(expected, abs=1e-6)
    answer = pipeline("audio-text-classification", model="org/tones")(str(tmp_path / "clip.wav"), text="a deep tone")
    assert {a["label"]: a["score"] for a in answer} == pytest.approx(expected, abs=1e-6)


def test_pushed_model_loads_without_mmclassify_only_with_trust_remote_code(trained, hub, tmp_path):
    push_to_hub(trained, "org/tones")
    processor = AudioTextProcessor.from_pretrained(trained)
    inputs = batch(processor)
    waveform = tone_clip(300.0)
    save_file(inputs, tmp_path / "inputs.safetensors")
    save_file({"waveform": torch.from_numpy(waveform)}, tmp_path / "waveform.safetensors")
    files = ("inputs.safetensors", "waveform.safetensors", "logits.safetensors")

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_MMCLASSIFY, "org/tones", *(str(tmp_path / name) for name in files)],
        cwd=tmp_path,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,  # transformers would ask whether to trust the code: no one answers
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "mmclassify is not importable" in done.stdout
    assert "refused without trust_remote_code" in done.stdout and "trust_remote_code=True" in done.stdout
    assert "model class from transformers_modules." in done.stdout
    assert "mmclassify modules loaded: []" in done.stdout
    outputs = load_file(tmp_path / "logits.safetensors")
    torch.testing.assert_close(outputs["logits"], local_logits(trained, inputs))
    snippet_inputs = dict(processor(audio=waveform, text="the text", sampling_rate=16000))
    torch.testing.assert_close(outputs["snippet_logits"], local_logits(trained, snippet_inputs))


# --- revisions and private repositories ----------------------------------------------------------------------


def test_revision_pushes_to_a_branch_and_loads_from_it(trained, hub):
    push_to_hub(trained, "org/tones", revision="fold-1")
    push_to_hub(trained, "org/tones", revision="fold-1", commit_message="again")  # the branch exists now

    repo = hub.repos["org/tones"]
    assert set(repo["branches"]) == {"main", "fold-1"}
    assert [(c["branch"], c["summary"]) for c in repo["commits"]][-1] == ("fold-1", "again")
    assert "model.safetensors" in stored_files(hub, "org/tones", "fold-1")
    assert "model.safetensors" not in stored_files(hub, "org/tones", "main")
    assert 'revision="fold-1"' in (hub.snapshot("org/tones", "fold-1") / "README.md").read_text()
    assert AudioTextClassifier.from_pretrained("org/tones", revision="fold-1").labels == ["mismatch", "match"]
    model = AudioTextForSequenceClassification.from_pretrained("org/tones", revision="fold-1").eval()
    inputs = batch(AudioTextProcessor.from_pretrained("org/tones", revision="fold-1"))
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, local_logits(trained, inputs))


def test_private_push_creates_a_private_repository_and_never_publishes_into_a_public_one(trained, hub, monkeypatch):
    push_to_hub(trained, "org/private", private=True)
    assert hub.repos["org/private"]["private"] is True
    AudioTextForSequenceClassification.from_pretrained("org/private")  # with the token

    push_to_hub(trained, "org/public")
    with pytest.raises(ValueError, match="org/public already exists and is public"):
        push_to_hub(trained, "org/public", private=True)
    assert len(hub.repos["org/public"]["commits"]) == 1


# --- command line ----------------------------------------------------------------------------------------------


def test_push_command_prints_the_url(trained, hub):
    result = invoke("push", trained, "org/cli", "--private", "--revision", "v1", "--commit-message", "first model")

    assert result.exit_code == 0, result.output
    commit = hub.repos["org/cli"]["commits"][-1]
    assert (commit["branch"], commit["summary"]) == ("v1", "first model")
    assert result.stdout.strip() == f"pushed {trained} to {hub.url}/org/cli/commit/{commit['oid']}"
    assert hub.repos["org/cli"]["private"] is True
    assert "push" in invoke("--help").stdout


def test_push_command_on_a_folder_that_is_not_a_model(tmp_path, hub):
    (tmp_path / "notes.txt").write_text("not a model")
    result = invoke("push", tmp_path, "org/nothing")

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path} is not an mmclassify model folder (expected a config.json with model_type "
        "'audio-text-classifier', found None)"
    ]
    assert hub.repos == {}


def test_train_pushes_the_model_at_the_end(tmp_path, hub):
    output_dir = tmp_path / "model"
    sets = [arg for override in TINY_TONES for arg in ("--set", override)]
    result = invoke(
        "train", DEMO_RECIPE, "--output-dir", output_dir, *sets, "--push-to-hub", "org/trained", "--hub-private"
    )

    assert result.exit_code == 0, result.output
    assert f"pushed to {hub.url}/org/trained/commit/" in result.stdout
    assert hub.repos["org/trained"]["private"] is True
    stored = hub.snapshot("org/trained")
    assert (stored / "model.safetensors").read_bytes() == (output_dir / "model.safetensors").read_bytes()


def test_train_push_with_every_fold_fails_before_training(tmp_path, hub):
    output_dir = tmp_path / "model"
    folds = "data.split={strategy: folds, column: pitch, num_folds: 2}"
    result = invoke("train", DEMO_RECIPE, "--output-dir", output_dir, "--set", folds, "--push-to-hub", "org/folds")

    assert result.exit_code == 1
    assert "--push-to-hub shares one model, but this recipe trains one per fold: pass --fold K" in result.output
    assert not output_dir.exists()
