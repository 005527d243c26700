"""Publishing a trained model folder on the Hugging Face Hub (or any Hub-compatible server: `HF_ENDPOINT`).

`push_to_hub("outputs/model", "org/name")` uploads what another user needs of a folder written by `mmclassify train`:
every file at the top of the folder (weights, config, processor files, metrics.json, recipe.yaml, run_info.json, the
plots), never its sub-folders (`checkpoints/`, `logs/`). Weights go as safetensors only: a folder holding a pickle
is refused. A model card (README.md) is written from the metrics, the recipe and the config, into the upload only
(the folder is left as it is; a README.md of its own is not uploaded).

The model's code travels with it, so that it also loads without mmclassify:
`AutoModelForSequenceClassification.from_pretrained("org/name", trust_remote_code=True)`. transformers' remote-code
loader fetches the file that `auto_map` in config.json names, and the files that it imports with single-dot relative
imports, all from the repository's root; so `configuration.py` and `modeling/*.py` are uploaded side by side, with
their `from ..configuration import` made `from .configuration import`. mmclassify itself never loads remote code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData

from .building import SCRATCH_AUDIO, SCRATCH_TEXT
from .configuration import AudioTextConfig
from .data.recipe import describe_split
from .metrics import METRIC_NAMES

# What `mmclassify train` writes at the end of a run; the model card is made from them.
TRAINED_FILES = ("config.json", "model.safetensors", "metrics.json", "recipe.yaml", "run_info.json")
PLOTS = ("confusion_matrix.png", "learning_curves.png")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
AUTO_MAP = {
    "AutoConfig": "configuration.AudioTextConfig",
    "AutoModelForSequenceClassification": "audio_text.AudioTextForSequenceClassification",
}
_METRIC_MEANINGS = {
    "weighted_accuracy": "share of all examples classified correctly (plain accuracy)",
    "unweighted_accuracy": "mean of the per-class recalls (each class counts the same)",
    "macro_f1": "mean of the per-class F1 scores",
}
_MODALITY_INPUTS = {"audio+text": "an audio clip together with its text", "audio": "an audio clip", "text": "a text"}


def check_model_folder(model_dir: str | Path) -> None:
    """Raise a `ValueError` naming the folder unless it is a trained mmclassify model that can be shared.

    It must hold what `mmclassify train` writes (`TRAINED_FILES`, with an mmclassify config) and no pickle files.
    """
    model_dir = Path(model_dir)
    config_file = model_dir / "config.json"
    model_type = json.loads(config_file.read_text()).get("model_type") if config_file.is_file() else None
    if model_type != AudioTextConfig.model_type:
        # A fold run's output folder holds one model per fold, in fold-<k>/.
        is_fold_run = (model_dir / "folds.json").is_file()
        hint = f"; for a fold run, push one fold: {model_dir / 'fold-<k>'}" if is_fold_run else ""
        raise ValueError(
            f"{model_dir} is not an mmclassify model folder (expected a config.json with model_type "
            f"{AudioTextConfig.model_type!r}, found {model_type!r}){hint}"
        )
    missing = [name for name in TRAINED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ValueError(
            f"{model_dir} is not a trained mmclassify model folder: no {', '.join(missing)} "
            "(push shares the folders `mmclassify train` writes)"
        )
    pickles = sorted(path.name for path in model_dir.iterdir() if path.suffix in PICKLE_SUFFIXES)
    if pickles:
        # Loading a pickle runs whatever code it holds; weights are shared as safetensors only.
        raise ValueError(f"{model_dir} holds pickle files ({', '.join(pickles)}): only safetensors is shared")


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a trained model folder, a model card and the model's code to the Hub repository `repo_id`.

    Creates the repository if needed (private with `private`, else with the Hub's default visibility; a private push
    into an existing public repository is refused rather than published), and the branch `revision` from main if it
    does not exist yet (default: main). `token` defaults to `HF_TOKEN` or the saved login. Returns the commit's URL.
    """
    model_dir = Path(model_dir)
    check_model_folder(model_dir)
    # Everything is read and written before the first request, so a bad folder never leaves an empty repository.
    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"] = AUTO_MAP
    operations = [
        CommitOperationAdd(path.name, path)
        for path in sorted(model_dir.iterdir())
        if path.is_file() and not path.name.startswith(".") and path.name not in ("config.json", "README.md")
    ]
    operations += [
        CommitOperationAdd("config.json", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()),
        CommitOperationAdd("README.md", str(model_card(model_dir, repo_id, revision)).encode()),
        *(CommitOperationAdd(name, source) for name, source in model_code().items()),
    ]

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private or None, exist_ok=True)
    if private and not api.model_info(repo_id).private:
        raise ValueError(
            f"{repo_id} already exists and is public: pushing with private=True would publish this model; make the "
            "repository private on the Hub first, or push without private"
        )
    if revision is not None:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message or f"Upload {model_dir.resolve().name}: model, processor, model card and code",
        revision=revision,
    )
    return commit.commit_url


def model_code() -> dict[str, bytes]:
    """The model's source files as the repository holds them (flat, single-dot relative imports): name -> code."""
    package = Path(__file__).parent
    files = [package / "configuration.py", *sorted((package / "modeling").glob("*.py"))]
    return {
        file.name: file.read_text().replace("from ..configuration import", "from .configuration import").encode()
        for file in files
        if file.name != "__init__.py"
    }


def model_card(model_dir: str | Path, repo_id: str, revision: str | None = None) -> ModelCard:
    """The model card of a trained folder: task, labels, data set and recipe, metrics, encoders, limits, usage.

    Its metadata carries the metrics (`model-index`, named exactly as in metrics.json, with their split) and
    `library_name: mmclassify`. `revision`: the branch the card is pushed to, for the usage snippet.
    """
    model_dir = Path(model_dir)
    check_model_folder(model_dir)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    recipe = yaml.safe_load((model_dir / "recipe.yaml").read_text())
    config = AudioTextConfig.from_pretrained(model_dir)
    run_info = json.loads((model_dir / "run_info.json").read_text())
    data, model, training = recipe["data"], recipe["model"], recipe["training"]
    dataset_id, dataset_name = _dataset(data)
    labels = metrics["labels"]
    task_type = "text-classification" if config.modalities == "text" else "audio-classification"
    splits = [split for split in ("test", "validation") if split in metrics]

    card_data = ModelCardData(
        library_name="mmclassify",
        pipeline_tag=task_type,
        tags=["mmclassify", "audio-text-classification", f"modalities:{config.modalities}"],
        datasets=[dataset_id] if data["source"] == "hub" else None,
        base_model=[name for name in _encoders(model, config).values() if _is_hub_id(name)] or None,
        metrics=list(METRIC_NAMES),
        model_name=repo_id.split("/")[-1],
        eval_results=[
            EvalResult(
                task_type=task_type,
                task_name=f"{config.modalities} classification",
                dataset_type=dataset_id,
                dataset_name=dataset_name,
                dataset_config=data.get("hub_config") or None,
                dataset_revision=data.get("revision") or None,
                dataset_split=split,
                metric_type=name,
                metric_name=name,
                metric_value=metrics[split][name],
            )
            for split in splits
            for name in METRIC_NAMES
        ],
    )
    sections = [
        f"# {repo_id.split('/')[-1]}",
        f"An mmclassify model: it classifies {_MODALITY_INPUTS[config.modalities]} into one of {len(labels)} "
        f"classes. Trained with `mmclassify train`; its recipe, metrics and run information are in this repository "
        "(`recipe.yaml`, `metrics.json`, `run_info.json`).",
        _task_section(config, data, labels),
        _data_section(data, training, metrics, run_info, dataset_name),
        _metrics_section(metrics, splits, [p for p in PLOTS if (model_dir / p).is_file()]),
        _model_section(model, config),
        _limits_section(model, config, data, dataset_name),
        _usage_section(repo_id, revision, config, model.get("trim_silence_db") or 0.0),
    ]
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")


def _dataset(data: dict[str, Any]) -> tuple[str, str]:
    """The data set's id (a Hub id, or the source's name) and its name in words."""
    source, path = data["source"], data.get("path") or ""
    if source == "hub":
        config = f", configuration {data['hub_config']}" if data.get("hub_config") else ""
        revision = f", revision {data['revision']}" if data.get("revision") else ""
        return path, f"{path} (Hub data set{config}{revision})"
    if source == "tones":
        return "tones", "mmclassify's built-in tones (generated tones, with texts that do or do not describe them)"
    # Local data: only the folder's or files' names; the full paths stay in recipe.yaml.
    where = Path(path).name if path else ", ".join(Path(p).name for p in data.get("splits", {}).values())
    return source, f"{source} ({where})" if where else source


def _encoders(model: dict[str, Any], config: AudioTextConfig) -> dict[str, str]:
    """The recipe's encoders that the model uses: modality -> checkpoint (a Hub id or folder) or from-scratch name."""
    return {
        modality: model[f"{modality}_encoder"]
        for modality, used in (("audio", config.uses_audio), ("text", config.uses_text))
        if used
    }


def _is_hub_id(name: str) -> bool:
    """Whether an encoder was named by its Hub id (not a from-scratch name, nor a local folder)."""
    if name in (SCRATCH_AUDIO, SCRATCH_TEXT) or name.startswith((".", "/", "~")) or Path(name).exists():
        return False
    return re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name) is not None


def _task_section(config: AudioTextConfig, data: dict[str, Any], labels: list[str]) -> str:
    lines = ["## Task", "", f"Input: {_MODALITY_INPUTS[config.modalities]}. Output: one of these labels:", ""]
    lines += [f"- `{label}`" for label in labels]
    if data.get("pairing") == "match_mismatch":
        lines += ["", "Each clip is paired with a text; the label says whether the text describes the clip."]
    elif config.uses_text:
        text = f"the template `{data['text_template']}`" if data.get("text_template") else f"`{data['text_column']}`"
        lines += ["", f"The text is what the training data gave in {text}; give the model the same kind of text."]
    return "\n".join(lines)


def _data_section(
    data: dict[str, Any], training: dict[str, Any], metrics: dict[str, Any], run_info: dict[str, Any], name: str
) -> str:
    lines = [
        "## Training data and recipe",
        "",
        f"- Data set: {name}.",
        f"- Split: {describe_split(data['split'])}.",
        f"- Labels: `{data['label_column']}`" + (f", merged: {data['label_map']}." if data.get("label_map") else "."),
        f"- Training: {training['epochs']} epochs, batch size {training['batch_size']}, learning rate "
        f"{training['learning_rate']}, seed {training['seed']}; the epoch with the best validation "
        f"`{metrics['select_metric']}` was kept (epoch {metrics['best_epoch']}).",
        "- The full recipe, as resolved for this run: `recipe.yaml` (`mmclassify train recipe.yaml` repeats it, given "
        "the same data).",
    ]
    versions = run_info["versions"]
    commit = f", commit {run_info['git_commit']}" if run_info.get("git_commit") else ""
    lines.append(
        f"- Software: mmclassify {versions['mmclassify']}{commit}, transformers {versions['transformers']}, "
        f"torch {versions['torch']} (`run_info.json`)."
    )
    return "\n".join(lines)


def _metrics_section(metrics: dict[str, Any], splits: list[str], plots: list[str]) -> str:
    lines = ["## Evaluation", "", _row(["split", *METRIC_NAMES]), _row(["---"] * (1 + len(METRIC_NAMES)))]
    lines += [_row([split, *(f"{metrics[split][name]:.4f}" for name in METRIC_NAMES)]) for split in splits]
    lines += [""] + [f"- `{name}`: {_METRIC_MEANINGS[name]}." for name in METRIC_NAMES]
    lines.append(
        "- The validation split chose the epoch kept, so its figures are optimistic; the test split was used once, "
        "at the end."
    )
    per_class = metrics.get("test", {}).get("per_class")
    if per_class:
        columns = ("precision", "recall", "f1")
        lines += ["", "Per class, on the test split:", "", _row(["label", *columns, "support"]), _row(["---"] * 5)]
        lines += [
            _row([label, *(f"{scores[c]:.4f}" for c in columns), str(scores["support"])])
            for label, scores in per_class.items()
        ]
    if plots:
        lines += ["", " ".join(f"![{Path(plot).stem.replace('_', ' ')}]({plot})" for plot in plots)]
    return "\n".join(lines)


def _row(cells: list[str]) -> str:
    """A row of a Markdown table."""
    return "| " + " | ".join(cells) + " |"


def _model_section(model: dict[str, Any], config: AudioTextConfig) -> str:
    lines = ["## Model", ""]
    for modality, name in _encoders(model, config).items():
        encoder_config = config.audio_config if modality == "audio" else config.text_config
        origin = "trained from scratch" if name in (SCRATCH_AUDIO, SCRATCH_TEXT) else "pretrained checkpoint"
        frozen = " (frozen)" if getattr(config, f"freeze_{modality}_encoder") else ""
        lines.append(f"- {modality} encoder: `{name}`, {origin}{frozen}; model type `{encoder_config.model_type}`.")
    if config.modalities != "audio+text":
        fusion = f"none ({config.modalities} only)"
    elif config.fusion == "cross_attention":
        fusion = f"{config.fusion_num_layers} cross-attention blocks, then the pooled vectors concatenated"
    else:
        fusion = "the pooled vectors concatenated (late fusion)"
    lines += [
        f"- Fusion: {fusion}; projection width {config.fusion_hidden_size}; then the classification head.",
        "- Code: `configuration.py`, `audio_text.py` and the files it imports are mmclassify's model code, as "
        "`auto_map` in `config.json` names it; weights: `model.safetensors`.",
    ]
    return "\n".join(lines)


def _limits_section(model: dict[str, Any], config: AudioTextConfig, data: dict[str, Any], dataset_name: str) -> str:
    lines = [
        "## Intended use and limits",
        "",
        f"- Intended for inputs like its training data: {dataset_name}. It was evaluated only on held-out parts of "
        f"that data set (split: {describe_split(data['split'])}); its accuracy on other corpora, recording set-ups, "
        "languages or speakers is unknown.",
        "- It always answers with one of its labels: there is no 'none of these'. Check the score before acting "
        "on a prediction.",
    ]
    if config.uses_text and model["text_encoder"] == SCRATCH_TEXT:
        lines.append(
            "- The text encoder was trained from scratch: its vocabulary is the words of the training texts, and "
            "any other word is unknown to it."
        )
    elif config.uses_text:
        lines.append("- It learnt from the training texts only: other languages and wordings were never evaluated.")
    lines.append(
        "- Not for decisions about people (their emotions, health, identity) without human review: a corpus's "
        "labels are its annotators' judgements, for its speakers only."
    )
    return "\n".join(lines)


def _usage_section(repo_id: str, revision: str | None, config: AudioTextConfig, trim_silence_db: float) -> str:
    at = f', revision="{revision}"' if revision else ""
    args = {"audio+text": '"clip.wav", "the text"', "audio": '"clip.wav"', "text": 'None, "the text"'}
    lines = ["## Usage", "", "With mmclassify installed (`pip install mmclassify`):", "", "```python"]
    lines += [
        "from mmclassify.inference import AudioTextClassifier",
        "",
        f'classifier = AudioTextClassifier.from_pretrained("{repo_id}"{at})',
    ]
    lines += [f"classifier({args[config.modalities]})  # {{'label': ..., 'score': ..., 'scores': {{...}}}}", "```"]
    auto_classes = ["AutoModelForSequenceClassification"]
    auto_classes += ["AutoFeatureExtractor"] if config.uses_audio else []
    auto_classes += ["AutoTokenizer"] if config.uses_text else []
    lines += [
        "",
        "Without mmclassify, transformers runs the model code that comes with this repository (read it first: "
        "`trust_remote_code=True` executes it); it needs torch, torchaudio and transformers.",
        "",
        "```python",
        "import torch",
        f"from transformers import {', '.join(auto_classes)}",
        "",
        f'model = AutoModelForSequenceClassification.from_pretrained("{repo_id}"{at}, trust_remote_code=True).eval()',
        "inputs = {}",
    ]
    if config.uses_audio:
        silence = (
            f", leading and trailing silence ({trim_silence_db:g} dB below the peak) cut" if trim_silence_db else ""
        )
        lines += [
            f'feature_extractor = AutoFeatureExtractor.from_pretrained("{repo_id}"{at})',
            f"# waveform: mono float32 samples at feature_extractor.sampling_rate{silence}",
            "audio = feature_extractor(",
            "    waveform, sampling_rate=feature_extractor.sampling_rate,",
            '    return_attention_mask=True, return_tensors="pt",',
            ")",
            'inputs.update(input_values=audio["input_values"], attention_mask=audio["attention_mask"])',
        ]
    if config.uses_text:
        lines += [
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}"{at})',
            'text = tokenizer(["the text"], return_tensors="pt")',
            'inputs.update(input_ids=text["input_ids"], text_attention_mask=text["attention_mask"])',
        ]
    lines += [
        "with torch.no_grad():",
        "    logits = model(**inputs).logits",
        "print(model.config.id2label[int(logits.argmax(-1))])",
        "```",
    ]
    return "\n".join(lines)
