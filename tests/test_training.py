"""Training: what `train()` writes, reloading it, learning on the built-in data, and evaluating a saved model."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from tiny_recipes import DEMO_RECIPE, PITCH_LABELS, TINY_TONES, tone_clip, write_pitch_manifests
from transformers import AutoModelForSequenceClassification, AutoProcessor

import mmclassify  # noqa: F401  (registers the Auto classes)
from mmclassify import AudioTextForSequenceClassification, AudioTextProcessor
from mmclassify.data.recipe import RecipeError, load_recipe, recipe_from_dict
from mmclassify.inference import AudioTextClassifier
from mmclassify.metrics import METRIC_NAMES
from mmclassify.training import evaluate_model, train


@pytest.fixture(scope="module")
def tiny_recipe():
    return load_recipe(DEMO_RECIPE, TINY_TONES)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_recipe):
    """A tiny fused model trained two epochs on a tiny tones set: (output folder, returned results)."""
    output_dir = tmp_path_factory.mktemp("tones-model")
    return output_dir, train(tiny_recipe, output_dir)


def test_train_writes_model_processor_metrics_and_recipe(trained):
    output_dir, results = trained
    for name in ("model.safetensors", "config.json", "processor_config.json", "tokenizer.json", "metrics.json"):
        assert (output_dir / name).is_file(), name
    assert (output_dir / "recipe.yaml").is_file()
    assert not list(output_dir.glob("*.bin"))

    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(results))  # what train() returns is what it wrote
    assert metrics["labels"] == ["mismatch", "match"]
    assert metrics["select_metric"] == "unweighted_accuracy"
    for split in ("validation", "test"):
        for name in METRIC_NAMES:
            assert 0.0 <= metrics[split][name] <= 1.0, (split, name)
        assert metrics[split]["loss"] > 0
    assert [entry["epoch"] for entry in metrics["history"]] == [1, 2]


def test_the_best_validation_epoch_is_kept(trained):
    _, results = trained
    scores = [entry["validation"]["unweighted_accuracy"] for entry in results["history"]]
    best = scores.index(max(scores)) + 1  # the first epoch with the best score
    assert results["best_epoch"] == best
    assert results["validation"] == results["history"][best - 1]["validation"]


def test_saved_recipe_is_the_resolved_recipe(trained, tiny_recipe):
    output_dir, _ = trained
    saved = yaml.safe_load((output_dir / "recipe.yaml").read_text())
    assert saved["data"]["generator"] == {"train_size": 64, "eval_size": 32, "seed": 0}
    assert saved["training"]["epochs"] == 2
    again = recipe_from_dict(saved)
    assert (again.data, again.model, again.training) == (tiny_recipe.data, tiny_recipe.model, tiny_recipe.training)


def test_saved_model_reloads_through_auto_classes_and_the_classifier(trained):
    output_dir, _ = trained
    model = AutoModelForSequenceClassification.from_pretrained(output_dir)
    assert isinstance(model, AudioTextForSequenceClassification)
    assert model.config.id2label == {0: "mismatch", 1: "match"}
    assert model.config.fusion_hidden_size == 32  # the recipe's override, not the demo's
    assert isinstance(AutoProcessor.from_pretrained(output_dir), AudioTextProcessor)

    classifier = AudioTextClassifier.from_pretrained(output_dir, device="cpu")
    result = classifier(tone_clip(200.0), "a deep tone", sampling_rate=16000)
    assert result["label"] in ("mismatch", "match")
    assert set(result["scores"]) == {"mismatch", "match"}
    assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-6)
    assert result["score"] == max(result["scores"].values())


def test_evaluate_model_gives_the_metrics_training_reported(trained, tiny_recipe):
    output_dir, results = trained
    for split in ("test", "validation"):
        metrics = evaluate_model(output_dir, tiny_recipe, split=split, batch_size=7)  # other batches, same result
        for name in (*METRIC_NAMES, "loss"):
            assert metrics[name] == pytest.approx(results[split][name], abs=1e-5), (split, name)
    assert metrics["per_class"].keys() == {"mismatch", "match"}
    assert results["test"]["confusion_matrix"] == evaluate_model(output_dir, tiny_recipe)["confusion_matrix"]


def test_evaluate_model_on_data_with_other_labels_names_them(trained, tmp_path):
    output_dir, _ = trained
    recipe = load_recipe(write_pitch_manifests(tmp_path, train_size=8, eval_size=8))
    with pytest.raises(ValueError) as info:
        evaluate_model(output_dir, recipe)
    message = str(info.value)
    for label in PITCH_LABELS:
        assert repr(label) in message
    assert "['mismatch', 'match']" in message and str(output_dir) in message


def test_evaluate_model_on_a_missing_split(trained, tiny_recipe):
    output_dir, _ = trained
    with pytest.raises(RecipeError, match="no split 'dev'"):
        evaluate_model(output_dir, tiny_recipe, split="dev")


@pytest.mark.parametrize("name", ["accuracy", "loss"])  # loss: lower is better, so it cannot pick the best epoch
def test_select_metric_must_be_a_metric(name):
    with pytest.raises(RecipeError, match=f"training.select_metric '{name}' is not one of"):
        load_recipe(DEMO_RECIPE, [*TINY_TONES, f"training.select_metric={name}"])


def test_fused_model_learns_the_built_in_task(tmp_path):
    # The built-in tones task with two pitch bands: audio alone and text alone are at chance (50%), so the loss can
    # only fall, and the held-out accuracy only rise, if the model compares the tone with the text.
    recipe = load_recipe(
        DEMO_RECIPE,
        ["data.generator={train_size: 128, eval_size: 64, seed: 0, pitches: [deep, shrill]}", "training.epochs=8"],
    )
    torch.manual_seed(0)
    results = train(recipe, tmp_path)
    losses = [entry["train_loss"] for entry in results["history"]]
    assert losses[0] > 0.6  # about ln 2: the first epoch guesses
    assert losses[-1] < 0.5 * losses[0], losses
    assert results["test"]["weighted_accuracy"] >= 0.85, results["test"]


@pytest.mark.parametrize(
    ("overrides", "window"),
    [([], None), (["training.max_duration=0.3"], 0.3), (["training.max_duration=0.3", "model.max_duration=2"], 2.0)],
)
def test_the_training_crop_length_becomes_the_prediction_window(tmp_path, overrides, window):
    recipe = load_recipe(DEMO_RECIPE, [*TINY_TONES, "training.epochs=1", "training.report_to=none", *overrides])
    train(recipe, tmp_path)
    assert AutoModelForSequenceClassification.from_pretrained(tmp_path).config.max_duration == window
    assert AudioTextClassifier.from_pretrained(tmp_path, device="cpu").window == (window or 30.0)
