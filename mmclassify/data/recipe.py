"""Recipes: YAML files with `data`, `model` and `training` sections; hyper-parameters as data, apart from code.

`load_recipe("recipes/demo.yaml", ["training.epochs=3"])` reads the file, applies `section.key=value` overrides
(values parsed as YAML, so numbers, booleans and lists work) and checks every field, naming the file and the field
when one is wrong. A recipe name without `.yaml` (e.g. `demo`) is looked up among the recipes shipped with mmclassify.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..configuration import AudioTextConfig


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the field."""


@dataclass
class DataSection:
    """Where the examples come from and which columns hold audio, text and label."""

    source: str = "tones"  # "tones" (built-in, generated) or "manifest" (CSV / JSON Lines files, one per split)
    splits: dict[str, str] = field(default_factory=dict)  # manifest: split name -> file, paths relative to recipe
    audio_column: str = "audio"  # manifests: a column of file paths, relative to the manifest's folder
    text_column: str = "text"
    label_column: str = "label"
    labels: list[str] | None = None  # class order; default: the sorted labels of the training split
    generator: dict[str, Any] = field(default_factory=dict)  # options of the built-in generator (train_size, ...)


@dataclass
class ModelSection:
    """The encoders (a Hub id, a folder, or a from-scratch name) and any `AudioTextConfig` field."""

    audio_encoder: str = "spectrogram-cnn"  # or a wav2vec2-family checkpoint, e.g. facebook/wav2vec2-base
    text_encoder: str = "scratch-bert"  # or a BERT-family checkpoint, e.g. bert-base-uncased
    audio_config: dict[str, Any] = field(default_factory=dict)  # overrides of the audio encoder's config
    text_config: dict[str, Any] = field(default_factory=dict)  # overrides of the text encoder's config
    options: dict[str, Any] = field(default_factory=dict)  # AudioTextConfig fields: fusion, modalities, ...


@dataclass
class TrainingSection:
    epochs: int = 10
    batch_size: int = 32  # global batch: split across processes, so results do not depend on how many run
    eval_batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    num_workers: int = 0  # DataLoader workers decoding audio
    select_metric: str = "unweighted_accuracy"  # validation metric that picks the checkpoint kept


@dataclass
class Recipe:
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    path: Path | None = None  # the file it came from; relative paths in it are resolved against its folder

    def resolve(self, path: str) -> Path:
        """A path written in the recipe, relative to the recipe's folder."""
        candidate = Path(path).expanduser()
        if candidate.is_absolute() or self.path is None:
            return candidate
        return self.path.parent / candidate

    def to_dict(self) -> dict[str, Any]:
        raw = dataclasses.asdict(self)
        raw.pop("path")
        options = raw["model"].pop("options")
        raw["model"].update(options)
        return raw


_MODEL_OPTIONS = {f.name for f in dataclasses.fields(AudioTextConfig)} - {"audio_config", "text_config"}


def shipped_recipes() -> dict[str, Path]:
    """Recipes installed with mmclassify, by name."""
    folder = resources.files("mmclassify") / "recipes"  # a link to the repository's top-level recipes/
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def _find(name_or_path: str | Path) -> Path:
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = shipped_recipes()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise RecipeError(f"{name_or_path}: no such recipe file, nor a shipped recipe (shipped: {', '.join(shipped)})")


def _apply_override(raw: dict[str, Any], override: str, origin: str) -> None:
    key, sep, value = override.partition("=")
    if not sep or "." not in key:
        raise RecipeError(f"{origin}: override {override!r} must look like section.field=value")
    *parents, leaf = key.strip().split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"{origin}: cannot set {key!r}: {part!r} is not a section")
    node[leaf] = yaml.safe_load(value)


def _section(cls: type, raw: Any, name: str, origin: str):
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise RecipeError(f"{origin}: section '{name}' must be a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise RecipeError(f"{origin}: unknown field(s) {', '.join(f'{name}.{k}' for k in unknown)}")
    for key, value in raw.items():
        default = getattr(cls(), key)
        if isinstance(default, bool) != isinstance(value, bool) and default is not None:
            raise RecipeError(f"{origin}: field '{name}.{key}' must be a boolean, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise RecipeError(f"{origin}: field '{name}.{key}' must be a number, got {value!r}")
            if isinstance(default, int) and not isinstance(default, bool) and value != int(value):
                raise RecipeError(f"{origin}: field '{name}.{key}' must be a whole number, got {value!r}")
        if isinstance(default, (str, dict)) and not isinstance(value, type(default)):
            raise RecipeError(f"{origin}: field '{name}.{key}' must be a {type(default).__name__}, got {value!r}")
    return cls(**raw)


def recipe_from_dict(raw: dict[str, Any], origin: str = "recipe", path: Path | None = None) -> Recipe:
    """Build and check a `Recipe` from its parsed YAML."""
    unknown = sorted(set(raw) - {"data", "model", "training"})
    if unknown:
        raise RecipeError(f"{origin}: unknown section(s) {', '.join(unknown)} (sections: data, model, training)")
    model_raw = dict(raw.get("model") or {})
    encoders = {
        k: model_raw.pop(k) for k in ("audio_encoder", "text_encoder", "audio_config", "text_config") if k in model_raw
    }
    bad = sorted(set(model_raw) - _MODEL_OPTIONS)
    if bad:
        raise RecipeError(f"{origin}: unknown field(s) {', '.join('model.' + k for k in bad)}")
    recipe = Recipe(
        data=_section(DataSection, raw.get("data"), "data", origin),
        model=_section(ModelSection, {**encoders, "options": model_raw}, "model", origin),
        training=_section(TrainingSection, raw.get("training"), "training", origin),
        path=path,
    )
    if recipe.data.source not in ("tones", "manifest"):
        raise RecipeError(f"{origin}: data.source must be 'tones' or 'manifest', got {recipe.data.source!r}")
    if recipe.data.source == "manifest" and "train" not in recipe.data.splits:
        raise RecipeError(f"{origin}: data.splits must name at least a 'train' manifest file")
    if recipe.training.epochs < 1 or recipe.training.batch_size < 1:
        raise RecipeError(f"{origin}: training.epochs and training.batch_size must be at least 1")
    return recipe


def load_recipe(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read a recipe file (or a shipped recipe by name), apply `section.field=value` overrides and check it."""
    path = _find(name_or_path)
    origin = str(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise RecipeError(f"{origin}: not valid YAML ({err})") from err
    if not isinstance(raw, dict):
        raise RecipeError(f"{origin}: a recipe is a mapping with data, model and training sections")
    for override in overrides:
        _apply_override(raw, override, origin)
    return recipe_from_dict(raw, origin, path=path.resolve())
