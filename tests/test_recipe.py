"""Recipes: reading the demo recipe (by file and by shipped name), `--set` overrides, and errors that name the file
and the field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from conftest import tiny_bert_config
from tiny_recipes import DEMO_RECIPE
from transformers import BertModel, BertTokenizerFast

import mmclassify
from mmclassify.building import build_model_and_processor
from mmclassify.data.recipe import Recipe, RecipeError, load_recipe, recipe_from_dict, shipped_recipes

RAW_DEMO = yaml.safe_load(DEMO_RECIPE.read_text())


def write_recipe(folder: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def without_path(recipe: Recipe) -> Recipe:
    return dataclasses.replace(recipe, path=None)


# --- reading ---------------------------------------------------------------------------------------------------


def test_demo_recipe_file_is_read_field_by_field():
    recipe = load_recipe(DEMO_RECIPE)

    assert recipe.path == DEMO_RECIPE.resolve()
    assert recipe.data.source == RAW_DEMO["data"]["source"] == "tones"
    assert recipe.data.generator == RAW_DEMO["data"]["generator"]
    model = RAW_DEMO["model"]
    assert recipe.model.audio_encoder == model["audio_encoder"]
    assert recipe.model.text_encoder == model["text_encoder"]
    assert recipe.model.audio_config == model["audio_config"]
    assert recipe.model.text_config == model["text_config"]
    # Every other key of the model section is an AudioTextConfig option.
    expected_options = {
        k: v for k, v in model.items() if k not in ("audio_encoder", "text_encoder", "audio_config", "text_config")
    }
    assert recipe.model.options == expected_options
    assert "fusion" in recipe.model.options
    for key, value in RAW_DEMO["training"].items():
        assert getattr(recipe.training, key) == value, key
        assert type(getattr(recipe.training, key)) is type(value), key
    assert recipe.training.eval_batch_size == 64  # a default: not in the file


def test_to_dict_round_trips():
    recipe = load_recipe(DEMO_RECIPE, ["training.epochs=3"])
    again = recipe_from_dict(recipe.to_dict())
    assert without_path(again) == without_path(recipe)
    assert again.training.epochs == 3


def test_shipped_recipes_are_the_repository_recipes():
    shipped = shipped_recipes()
    repository = {p.stem: p for p in DEMO_RECIPE.parent.glob("*.yaml")}

    assert set(shipped) == set(repository)
    assert "demo" in shipped
    for name, path in shipped.items():
        assert path.read_text() == repository[name].read_text()
        # Found among the installed package's files, not in the current directory.
        assert path.parent == Path(mmclassify.__file__).parent / "recipes"


def test_shipped_recipe_by_name_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no recipes/ here
    by_name = load_recipe("demo")
    assert by_name.path.is_file() and by_name.path.name == "demo.yaml"
    assert without_path(by_name) == without_path(load_recipe(DEMO_RECIPE))


def test_pyproject_ships_the_recipes_as_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert "recipes/*.yaml" in package_data["mmclassify"]
    link = Path(__file__).resolve().parents[1] / "mmclassify" / "recipes"
    assert link.resolve() == DEMO_RECIPE.parent


# --- overrides -------------------------------------------------------------------------------------------------


def test_overrides_parse_numbers_booleans_lists_and_nested_fields():
    recipe = load_recipe(
        DEMO_RECIPE,
        [
            "training.epochs=3",
            "training.learning_rate=5e-4",  # PyYAML alone reads this as a string
            "training.weight_decay=0",  # an int where the default is a float
            "model.freeze_text_encoder=true",
            "model.fusion=concat",
            "data.labels=[match, mismatch]",
            "model.audio_config.hidden_size=48",
            "model.audio_config.conv_channels=[4, 8]",
            "data.generator.train_size=40",
        ],
    )
    assert recipe.training.epochs == 3 and type(recipe.training.epochs) is int
    assert recipe.training.learning_rate == pytest.approx(5e-4) and type(recipe.training.learning_rate) is float
    assert recipe.training.weight_decay == 0.0 and type(recipe.training.weight_decay) is float
    assert recipe.model.options["freeze_text_encoder"] is True
    assert recipe.model.options["fusion"] == "concat"
    assert recipe.data.labels == ["match", "mismatch"]
    # A nested override changes one key and keeps the file's other keys.
    assert recipe.model.audio_config == {
        **RAW_DEMO["model"]["audio_config"],
        "hidden_size": 48,
        "conv_channels": [4, 8],
    }
    assert recipe.data.generator == {**RAW_DEMO["data"]["generator"], "train_size": 40}


def test_override_replaces_a_whole_mapping():
    recipe = load_recipe(DEMO_RECIPE, ["data.generator={train_size: 8, eval_size: 4}"])
    assert recipe.data.generator == {"train_size": 8, "eval_size": 4}


def test_whole_number_float_is_an_int():
    recipe = load_recipe(DEMO_RECIPE, ["training.epochs=3.0"])
    assert recipe.training.epochs == 3 and type(recipe.training.epochs) is int


@pytest.mark.parametrize("override", ["training.epochs", "epochs=3", "=3", "training.epochs.value=3"])
def test_bad_override_syntax_is_an_error(override):
    with pytest.raises(RecipeError) as info:
        load_recipe(DEMO_RECIPE, [override])
    message = str(info.value)
    assert str(DEMO_RECIPE) in message
    assert repr(override) in message or "'epochs' is not a section" in message


# --- errors that name the file and the field ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("optimizer.name=adam", "optimizer"),  # unknown section
        ("data.colour=red", "data.colour"),
        ("model.fusoin=concat", "model.fusoin"),  # a misspelled model option
        ("model.audio_encodr=x", "model.audio_encodr"),
        ("training.epoch=3", "training.epoch"),
        ("data.generator.train_sise=3", "data.generator.train_sise"),
    ],
)
def test_unknown_section_or_field_names_file_and_field(override, field):
    with pytest.raises(RecipeError) as info:
        load_recipe(DEMO_RECIPE, [override])
    assert str(DEMO_RECIPE) in str(info.value)
    assert field in str(info.value)
    assert "unknown" in str(info.value)


def test_unknown_field_in_a_file(tmp_path):
    path = write_recipe(tmp_path, "data:\n  source: tones\ntraining:\n  epochs: 2\n  lerning_rate: 0.1\n")
    with pytest.raises(RecipeError, match="unknown field") as info:
        load_recipe(path)
    assert str(path) in str(info.value) and "training.lerning_rate" in str(info.value)


@pytest.mark.parametrize(
    ("override", "field", "expected"),
    [
        ("training.epochs=ten", "training.epochs", "number"),
        ("training.epochs=2.5", "training.epochs", "whole number"),
        ("training.seed=true", "training.seed", "number"),
        ("training.learning_rate=fast", "training.learning_rate", "number"),
        ("model.freeze_audio_encoder=1", "model.freeze_audio_encoder", "boolean"),
        ("model.fusion_num_layers=two", "model.fusion_num_layers", "number"),
        ("model.fusion=[a, b]", "model.fusion", "str"),
        ("data.splits=train.csv", "data.splits", "dict"),
        ("data.text_column=3", "data.text_column", "str"),
        ("data.labels=abc", "data.labels", "list"),
        ("model.audio_config=16", "model.audio_config", "dict"),
        ("data.generator.seed=x", "data.generator.seed", "number"),
    ],
)
def test_wrong_type_names_file_field_and_expected_type(override, field, expected):
    with pytest.raises(RecipeError) as info:
        load_recipe(DEMO_RECIPE, [override])
    message = str(info.value)
    assert str(DEMO_RECIPE) in message
    assert f"'{field}'" in message
    assert f"must be a {expected}" in message


def test_wrong_type_in_a_file(tmp_path):
    path = write_recipe(tmp_path, 'training:\n  epochs: "ten"\n')
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(path) in str(info.value) and "'training.epochs' must be a number" in str(info.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data.source=nowhere", "data.source must be one of ['tones', 'manifest', 'hub', 'audiofolder', "),
        ("data.source=hub", "data.path must give the hub folder or Hub id"),
        ("training.epochs=0", "training.epochs"),
        ("training.batch_size=0", "training.batch_size"),
        ("data.source=manifest", "data.path must name the manifest, or data.splits a 'train' manifest file"),
        ("model.trim_silence_db=-5", "model.trim_silence_db must not be negative"),
    ],
)
def test_invalid_values_are_errors(override, expected):
    with pytest.raises(RecipeError) as info:
        load_recipe(DEMO_RECIPE, [override])
    assert str(DEMO_RECIPE) in str(info.value) and expected in str(info.value)


def test_missing_file_names_the_file_and_the_shipped_recipes(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(RecipeError) as info:
        load_recipe(missing)
    assert str(missing) in str(info.value) and "no such recipe file" in str(info.value)
    assert "demo" in str(info.value)  # the shipped recipes are listed


def test_invalid_yaml_names_the_file(tmp_path):
    path = write_recipe(tmp_path, "data:\n  source: [tones\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(path) in str(info.value) and "not valid YAML" in str(info.value)


@pytest.mark.parametrize("text", ["- data\n- model\n", "just a string\n"])
def test_recipe_that_is_not_a_mapping(tmp_path, text):
    path = write_recipe(tmp_path, text)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(path) in str(info.value) and "mapping" in str(info.value)


def test_section_that_is_not_a_mapping(tmp_path):
    path = write_recipe(tmp_path, "training: 3\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert str(path) in str(info.value) and "section 'training' must be a mapping" in str(info.value)


def test_empty_file_is_the_defaults(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, ""))
    assert without_path(recipe) == Recipe()


# --- model option values are checked when the model is built -------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.fusion=bogus", "fusion must be one of ('cross_attention', 'concat'), got 'bogus'"),
        ("model.modalities=video", "modalities must be one of"),
        ("model.fusion_hidden_size=30", "fusion_hidden_size (30) must be divisible by fusion_num_attention_heads"),
        ("model.audio_config.hidden_size=30", "hidden_size (30) must be divisible by num_attention_heads"),
    ],
)
def test_bad_model_option_values_fail_when_the_model_is_built(override, expected):
    recipe = load_recipe(DEMO_RECIPE, [override])  # a value of the right type: the recipe itself loads
    with pytest.raises(RecipeError) as info:
        build_model_and_processor(recipe.model, ["mismatch", "match"], ["a low tone"])
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.audio_config.n_mel=32", "model.audio_config.n_mel: SpectrogramCNNConfig has no such setting"),
        ("model.text_config.hiden_size=32", "model.text_config.hiden_size: BertConfig has no such setting"),
    ],
)
def test_misspelt_encoder_settings_fail_when_the_model_is_built(override, expected):
    recipe = load_recipe(DEMO_RECIPE, [override])
    with pytest.raises(RecipeError, match=expected):
        build_model_and_processor(recipe.model, ["mismatch", "match"], ["a low tone"])


def test_pretrained_encoder_settings_are_applied_and_misspelt_ones_refused(tmp_path):
    BertModel(tiny_bert_config()).save_pretrained(tmp_path / "bert")
    BertTokenizerFast(
        vocab={w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "tone"])}
    ).save_pretrained(tmp_path / "bert")
    good = load_recipe(
        DEMO_RECIPE, [f"model.text_encoder={tmp_path / 'bert'}", "model.text_config.hidden_dropout_prob=0.0"]
    )
    model, _ = build_model_and_processor(good.model, ["mismatch", "match"], [])
    assert model.text_encoder.config.hidden_dropout_prob == 0.0
    bad = load_recipe(DEMO_RECIPE, [f"model.text_encoder={tmp_path / 'bert'}", "model.text_config.hidden_dropout=0.0"])
    with pytest.raises(
        RecipeError, match=r"model\.text_config\.hidden_dropout: BertConfig of .*bert has no such setting"
    ):
        build_model_and_processor(bad.model, ["mismatch", "match"], [])
