"""Recipes: YAML files with `data`, `model` and `training` sections; hyper-parameters as data, apart from code.

`load_recipe("recipes/demo.yaml", ["training.epochs=3"])` reads the file, applies `section.key=value` overrides
(values parsed as YAML, so numbers, booleans and lists work) and checks every field, naming the file and the field
when one is wrong. A recipe name without `.yaml` (e.g. `demo`) is looked up among the recipes shipped with mmclassify.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from transformers import SchedulerType

from ..configuration import AudioTextConfig
from ..metrics import METRIC_NAMES
from .splitting import SplitError, SplitSection
from .synthetic import make_tones_dataset


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the field."""


@dataclass
class DataSection:
    """Where the examples come from, where their text and label come from, and how they are split."""

    # "tones" (built-in, generated), "manifest" (CSV / JSON Lines), "hub" (a Hub data set or a local copy of one),
    # "audiofolder" (class sub-folders), or a corpus in its own layout: iemocap, ravdess, crema_d, meld, ...
    source: str = "tones"
    path: str = ""  # the corpus or audiofolder folder, the manifest file, or the Hub id; relative to the recipe
    revision: str = ""  # hub: the commit to load, so that a run can be repeated
    hub_config: str = ""  # hub: the data set's configuration name, if it has several
    splits: dict[str, str] = field(default_factory=dict)  # manifest: split name -> file, one file per split
    audio_column: str = "audio"  # manifests: file paths, relative to the manifest's folder
    # New columns cut out of another by a regular expression's first group, e.g. a Hub copy's session and speaker
    # from its file names: {session: {from: file, pattern: "Ses0(\\d)"}}
    extract: dict[str, dict[str, str]] = field(default_factory=dict)
    text_column: str = "text"  # the transcript; "" for none
    text_template: str = ""  # or text made from metadata: "{gender} speaker, {duration:.1f} s"
    label_column: str = "label"
    label_map: dict[str, str] = field(default_factory=dict)  # merges, e.g. {excited: happy}
    labels: list[str] | None = None  # the class order; default: every label of the data, sorted
    other_labels: str = "error"  # labels outside `labels`: "error" (bad data), "drop", or a class to map them to
    speaker_column: str = "speaker"  # reported per split by `data check`; the default group to split by
    # The split strategy, see mmclassify.data.splitting; its group column defaults to the speaker column.
    split: dict[str, Any] = field(default_factory=lambda: dataclasses.asdict(SplitSection(column="speaker")))
    pairing: str = ""  # "match_mismatch": pair each clip with its own or another class's text; label match/mismatch
    on_error: str = "stop"  # rows that cannot be used (missing or corrupt file, bad label, empty text): stop or skip
    num_proc: int = 1  # processes decoding audio while the data is prepared
    generator: dict[str, Any] = field(default_factory=dict)  # options of the built-in generator (train_size, ...)


@dataclass
class ModelSection:
    """The encoders (a Hub id, a folder, or a from-scratch name) and any `AudioTextConfig` field."""

    audio_encoder: str = "spectrogram-cnn"  # or a wav2vec2-family checkpoint, e.g. facebook/wav2vec2-base
    text_encoder: str = "scratch-bert"  # or a BERT-family checkpoint, e.g. bert-base-uncased
    audio_config: dict[str, Any] = field(default_factory=dict)  # overrides of the audio encoder's config
    text_config: dict[str, Any] = field(default_factory=dict)  # overrides of the text encoder's config
    # The processor (saved with the model, so prediction does the same): cut each clip's leading and trailing
    # audio quieter than this many dB below its loudest 10 ms (0 = keep every sample).
    trim_silence_db: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)  # AudioTextConfig fields: fusion, modalities, ...


@dataclass
class TrainingSection:
    epochs: int = 10
    batch_size: int = 32  # global batch: split across processes, so results do not depend on how many run
    eval_batch_size: int = 64
    gradient_accumulation_steps: int = 1  # optimizer steps every N batches (an effective batch of N x batch_size)
    learning_rate: float = 1e-3  # fusion, projections and head
    encoder_learning_rate: float = 0.0  # the audio and text encoders; 0 = learning_rate
    weight_decay: float = 0.01
    lr_scheduler: str = "linear"  # any transformers scheduler name: linear, cosine, constant_with_warmup, ...
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0  # 0 = no clipping
    mixed_precision: str = "no"  # no, bf16 or fp16 (where the device has it)
    gradient_checkpointing: bool = False  # recompute the encoders' activations in the backward pass
    freeze_encoders_steps: int = 0  # keep the encoders frozen for the first N optimizer steps, then train them
    cache_encoder_outputs: bool = True  # encoders frozen throughout: run them once, train from their cached outputs
    class_weighted_loss: bool = False  # weight each class by n / (classes x its training count)
    max_duration: float = 0.0  # seconds; longer training clips are randomly cropped to it (0 = never)
    modality_dropout: float = 0.0  # chance that a training example loses its text, and as much its audio
    seed: int = 0
    num_workers: int = 0  # DataLoader workers building batches
    group_by_length: bool = True  # batches of clips of similar length (less padding), in random order
    select_metric: str = "unweighted_accuracy"  # validation metric that picks the checkpoint kept
    early_stopping_patience: int = 0  # stop after N evaluations without a better validation score (0 = never)
    checkpoint_every: int = 0  # optimizer steps between checkpoints (0 = at the end of every epoch)
    keep_checkpoints: int = 2  # the newest N checkpoints are kept (the best model is kept apart)
    report_to: str = "tensorboard"  # training curves for TensorBoard in OUTPUT/logs, or "none"


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
        return (self.path.parent / candidate).resolve()

    def to_dict(self) -> dict[str, Any]:
        raw = dataclasses.asdict(self)
        raw.pop("path")
        # Data paths made absolute, so that the copy saved beside a trained model still points at the data.
        data = raw["data"]
        if data["path"] and data["source"] != "hub":
            data["path"] = str(self.resolve(data["path"]))
        if data["source"] == "hub" and self.resolve(data["path"]).exists():  # a local copy of a Hub data set
            data["path"] = str(self.resolve(data["path"]))
        data["splits"] = {split: str(self.resolve(p)) for split, p in data["splits"].items()}
        options = raw["model"].pop("options")
        raw["model"].update(options)
        return raw


_MODEL_OPTIONS = {f.name for f in dataclasses.fields(AudioTextConfig)} - {"audio_config", "text_config"}
_OPTION_DEFAULTS = {f.name: f.default for f in dataclasses.fields(AudioTextConfig) if f.name in _MODEL_OPTIONS}


def shipped_recipes() -> dict[str, Path]:
    """Recipes installed with mmclassify, by name."""
    folder = resources.files("mmclassify") / "recipes"  # a link to the repository's top-level recipes/
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def describe_split(split: dict[str, Any]) -> str:
    """A recipe's `data.split` in words, e.g. "held-out speaker (test 0.2, validation 0.1)"."""
    return {
        "given": "the source's own splits",
        "holdout": f"held-out {split['column']} (test {split['test']}, validation {split['validation']})",
        "folds": f"folds of {split['column']!r}, test fold {split['fold']}, validation {split['validation']}",
        "random": f"random, stratified (test {split['test']}, validation {split['validation'] or split['test']})",
    }[split["strategy"]]


def describe_shipped_recipes() -> list[dict[str, str]]:
    """Name, task (the recipe's first comment line), classes, split and source of each shipped recipe."""
    rows = []
    for name, path in sorted(shipped_recipes().items()):
        text = path.read_text()
        task = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), "")
        data = recipe_from_dict(yaml.safe_load(text) or {}, str(path), path=path).data
        if data.pairing == "match_mismatch":
            classes = "match, mismatch"
        else:
            classes = ", ".join(map(str, data.labels)) if data.labels else "the labels found in the data"
        how = describe_split(data.split)
        source = data.source + (f" {data.path}" if data.path else "") + (f"@{data.revision}" if data.revision else "")
        rows.append({"name": name, "task": task, "classes": classes, "split": how, "source": source})
    return rows


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
    if key.strip() == "data.path" or key.strip().startswith("data.splits."):
        # Paths typed on the command line are relative to the working directory, not to the recipe file.
        local = Path(str(node[leaf])).expanduser()
        if not local.is_absolute() and (local.exists() or raw.get("data", {}).get("source") != "hub"):
            node[leaf] = str(local.resolve())


# YAML 1.1 (PyYAML) reads a number with an exponent but no dot, such as 1e-4, as a string.
_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _checked(default: Any, value: Any, name: str, origin: str) -> Any:
    """`value` for the field `name` whose default is `default`, of the default's type; else a `RecipeError`."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise RecipeError(f"{origin}: field '{name}' must be a boolean (true or false), got {value!r}")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise RecipeError(f"{origin}: field '{name}' must be a number, got {value!r}")
        if isinstance(default, int):
            if not float(value).is_integer():
                raise RecipeError(f"{origin}: field '{name}' must be a whole number, got {value!r}")
            return int(value)
        return float(value)
    if isinstance(default, (str, dict, list)) and not isinstance(value, type(default)):
        raise RecipeError(f"{origin}: field '{name}' must be a {type(default).__name__}, got {value!r}")
    return value


def _section(cls: type, raw: Any, name: str, origin: str):
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise RecipeError(f"{origin}: section '{name}' must be a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise RecipeError(f"{origin}: unknown field(s) {', '.join(f'{name}.{k}' for k in unknown)}")
    defaults = cls()
    return cls(**{key: _checked(getattr(defaults, key), value, f"{name}.{key}", origin) for key, value in raw.items()})


def _check_data(data: DataSection, origin: str) -> None:
    from .sources import SOURCES  # the corpus readers' names; imported here, as sources imports this module

    if data.source not in SOURCES:
        raise RecipeError(f"{origin}: data.source must be one of {list(SOURCES)}, got {data.source!r}")
    if data.source not in ("tones", "manifest") and not data.path:
        raise RecipeError(f"{origin}: data.path must give the {data.source} folder or Hub id")
    if data.source == "manifest" and not (data.path or "train" in data.splits):
        raise RecipeError(f"{origin}: data.path must name the manifest, or data.splits a 'train' manifest file")
    labels = data.labels
    if labels is not None and (
        not isinstance(labels, list) or not labels or not all(isinstance(x, (str, int)) for x in labels)
    ):
        raise RecipeError(f"{origin}: field 'data.labels' must be a list of class names, got {labels!r}")
    if labels and any(isinstance(x, bool) for x in labels):
        raise RecipeError(
            f"{origin}: data.labels has true/false in {labels!r}: YAML reads yes, no, on, off as booleans; quote them"
        )
    if data.other_labels not in ("error", "drop") and data.other_labels not in [str(x) for x in labels or []]:
        raise RecipeError(
            f"{origin}: data.other_labels must be 'error', 'drop' or one of data.labels, got {data.other_labels!r}"
        )
    for choice, allowed in (("on_error", ("stop", "skip")), ("pairing", ("", "match_mismatch"))):
        if getattr(data, choice) not in allowed:
            raise RecipeError(f"{origin}: data.{choice} must be one of {list(allowed)}, got {getattr(data, choice)!r}")
    for column, rule in data.extract.items():
        if not (isinstance(rule, dict) and set(rule) == {"from", "pattern"}):
            raise RecipeError(f"{origin}: data.extract.{column} must be {{from: COLUMN, pattern: REGEX}}, got {rule!r}")
        try:
            groups = re.compile(str(rule["pattern"])).groups
        except re.error as err:
            raise RecipeError(f"{origin}: data.extract.{column}.pattern is not a regular expression ({err})") from err
        if groups < 1:
            raise RecipeError(f"{origin}: data.extract.{column}.pattern needs a (group) to extract")
    split = _section(SplitSection, data.split, "data.split", origin)
    split.column = split.column or data.speaker_column
    try:
        split.check("data.split")
    except SplitError as err:
        raise RecipeError(f"{origin}: {err}") from err
    data.split = dataclasses.asdict(split)
    if data.source == "tones":
        generator = inspect.signature(make_tones_dataset).parameters
        unknown = sorted(set(data.generator) - set(generator))
        if unknown:
            raise RecipeError(
                f"{origin}: unknown field(s) {', '.join('data.generator.' + k for k in unknown)} "
                f"(fields: {', '.join(generator)})"
            )
        data.generator = {
            k: _checked(generator[k].default, v, f"data.generator.{k}", origin) for k, v in data.generator.items()
        }


def recipe_from_dict(raw: dict[str, Any], origin: str = "recipe", path: Path | None = None) -> Recipe:
    """Build and check a `Recipe` from its parsed YAML."""
    unknown = sorted(set(raw) - {"data", "model", "training"})
    if unknown:
        raise RecipeError(f"{origin}: unknown section(s) {', '.join(unknown)} (sections: data, model, training)")
    model_raw = dict(raw.get("model") or {})
    # The section's own fields (encoders, processor); every other key is an `AudioTextConfig` option.
    own = {f.name for f in dataclasses.fields(ModelSection)} - {"options"}
    encoders = {k: model_raw.pop(k) for k in own if k in model_raw}
    bad = sorted(set(model_raw) - _MODEL_OPTIONS)
    if bad:
        raise RecipeError(f"{origin}: unknown field(s) {', '.join('model.' + k for k in bad)}")
    model_raw = {k: _checked(_OPTION_DEFAULTS.get(k), v, f"model.{k}", origin) for k, v in model_raw.items()}
    recipe = Recipe(
        data=_section(DataSection, raw.get("data"), "data", origin),
        model=_section(ModelSection, {**encoders, "options": model_raw}, "model", origin),
        training=_section(TrainingSection, raw.get("training"), "training", origin),
        path=path,
    )
    _check_data(recipe.data, origin)
    has_text = bool(recipe.data.text_column or recipe.data.text_template or recipe.data.pairing)
    if not has_text and recipe.model.options.get("modalities", "audio+text") != "audio":
        raise RecipeError(
            f"{origin}: the data has no text (data.text_column is empty and there is no data.text_template): "
            "give one, or set model.modalities=audio"
        )
    if recipe.training.select_metric not in METRIC_NAMES:  # all higher-is-better, as model selection assumes
        raise RecipeError(
            f"{origin}: training.select_metric {recipe.training.select_metric!r} is not one of {list(METRIC_NAMES)}"
        )
    if recipe.model.trim_silence_db < 0:
        raise RecipeError(f"{origin}: model.trim_silence_db must not be negative, got {recipe.model.trim_silence_db}")
    _check_training(recipe.training, origin)
    return recipe


def _check_training(training: TrainingSection, origin: str) -> None:
    at_least_one = ("epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps", "keep_checkpoints")
    for name in at_least_one:
        if getattr(training, name) < 1:
            raise RecipeError(f"{origin}: training.{name} must be at least 1, got {getattr(training, name)}")
    not_negative = ("learning_rate", "encoder_learning_rate", "weight_decay", "warmup_ratio", "max_grad_norm")
    not_negative += ("freeze_encoders_steps", "max_duration", "early_stopping_patience", "checkpoint_every")
    for name in not_negative:
        if getattr(training, name) < 0:
            raise RecipeError(f"{origin}: training.{name} must not be negative, got {getattr(training, name)}")
    if not 0.0 <= training.modality_dropout < 1.0:
        raise RecipeError(f"{origin}: training.modality_dropout must be in [0, 1), got {training.modality_dropout}")
    choices = {"mixed_precision": ("no", "bf16", "fp16"), "report_to": ("tensorboard", "none")}
    choices["lr_scheduler"] = tuple(t.value for t in SchedulerType)
    for name, allowed in choices.items():
        value = getattr(training, name)
        if value not in allowed:
            raise RecipeError(f"{origin}: training.{name} must be one of {list(allowed)}, got {value!r}")


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
