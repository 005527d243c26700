"""The training loop: one loop for one process or many (`accelerate launch`), checkpoints, resume, model selection.

Run it with `mmclassify train RECIPE.yaml`, or `accelerate launch [--multi_gpu --num_processes N] -m mmclassify
train RECIPE.yaml` (DeepSpeed and FSDP through `accelerate launch --config_file`). The recipe's batch size is the
global batch: accelerate splits each batch across processes (`split_batches=True`), so a run on N processes sees
the same batches in the same order as a run on one.

A run writes to its output folder: `checkpoints/checkpoint-<step>` (every `training.checkpoint_every` optimizer
steps, or every epoch), `best-<step>/` (the model with the best validation score so far), `logs/` (TensorBoard), and
at the end the best model and its processor, `metrics.json`, `recipe.yaml`, `run_info.json` and the plots.
`train(..., resume=True)` continues from the newest complete checkpoint and ends where the uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.logging import get_logger
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..building import audio_sampling_rate, build_model_and_processor
from ..data.collate import AudioTextCollator
from ..data.preparation import PreparedData, prepare_data, tokenize
from ..data.recipe import Recipe, RecipeError, TrainingSection
from ..encoder_cache import EncoderCacheCollator, cache_encoder_outputs
from ..metrics import compute_metrics
from ..modeling import AudioTextForSequenceClassification
from ..processing import AudioTextProcessor
from ..reports import plot_confusion_matrix, plot_learning_curves
from .checkpoints import checkpoints, load_trainer_state, save_checkpoint
from .loaders import make_loader
from .run_info import run_info

logger = get_logger(__name__)


def make_accelerator(cfg: TrainingSection | None = None, logging_dir: Path | None = None) -> Accelerator:
    # `accelerate launch --multi_gpu --num_processes N` on a machine without a GPU starts N processes, but accelerate
    # only joins them into one distributed run (gloo) when told to use the CPU; otherwise each would train alone.
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu = launched and not torch.accelerator.is_available()
    options: dict[str, Any] = {}
    if cfg is not None:
        options["gradient_accumulation_steps"] = cfg.gradient_accumulation_steps
        if cfg.mixed_precision != "no":
            options["mixed_precision"] = cfg.mixed_precision
        if cfg.report_to == "tensorboard" and logging_dir is not None:
            options.update(log_with="tensorboard", project_dir=str(logging_dir))
    # Each run sets its own precision and accumulation: accelerate keeps them in a process-wide state that refuses
    # changes, so a second run in one Python session (another recipe, a notebook) starts from a fresh one. The
    # process group (`PartialState`) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=cpu, dataloader_config=DataLoaderConfiguration(split_batches=True), **options)


def _prepared(recipe: Recipe, accelerator: Accelerator) -> PreparedData:
    # The main process decodes and fills the datasets cache first; the others then read it from there.
    with accelerator.main_process_first():
        return prepare_data(recipe, audio_sampling_rate(recipe.model))


def _with_tokens(
    prepared: PreparedData, model: AudioTextForSequenceClassification, processor: AudioTextProcessor, accelerator
) -> PreparedData:
    """The prepared data, with its tokens when the model reads text."""
    if not model.config.uses_text:
        return prepared
    max_length = getattr(model.config.text_config, "max_position_embeddings", None)
    with accelerator.main_process_first():
        return tokenize(prepared, processor.tokenizer, max_length)


def _frozen_encoders(model: AudioTextForSequenceClassification) -> list[torch.nn.Module]:
    """The encoders the model uses that its config freezes for the whole run."""
    config = model.config
    frozen = []
    if config.uses_audio and config.freeze_audio_encoder:
        frozen.append(model.audio_encoder)
    if config.uses_text and config.freeze_text_encoder:
        frozen.append(model.text_encoder)
    return frozen


def _can_cache_encoders(model: AudioTextForSequenceClassification, cfg: TrainingSection) -> bool:
    # Every encoder frozen throughout, and every batch sees what the cache saw: whole clips, both modalities.
    uses = int(model.config.uses_audio) + int(model.config.uses_text)
    whole = not (cfg.max_duration or cfg.modality_dropout or cfg.freeze_encoders_steps)
    return cfg.cache_encoder_outputs and whole and len(_frozen_encoders(model)) == uses


def _is_encoder_parameter(name: str) -> bool:
    return name.startswith(("audio_encoder.", "text_encoder."))


def _optimizer(model: torch.nn.Module, cfg: TrainingSection) -> torch.optim.Optimizer:
    """AdamW with two groups: the encoders (`encoder_learning_rate`) and the rest (`learning_rate`)."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    encoder_lr = cfg.encoder_learning_rate or cfg.learning_rate
    groups = [
        {"params": [p for n, p in trainable if _is_encoder_parameter(n)], "lr": encoder_lr},
        {"params": [p for n, p in trainable if not _is_encoder_parameter(n)], "lr": cfg.learning_rate},
    ]
    return torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)


def _scheduler(optimizer: torch.optim.Optimizer, cfg: TrainingSection, total_steps: int) -> LambdaLR:
    """The recipe's schedule (warm-up then decay) for every group; the encoders' rate is 0 for the first
    `freeze_encoders_steps` steps, so they start to learn only once the fusion and head have settled."""
    schedule = get_scheduler(
        cfg.lr_scheduler, optimizer, math.ceil(cfg.warmup_ratio * total_steps), total_steps
    ).lr_lambdas[0]
    frozen_for = cfg.freeze_encoders_steps

    def encoders(step: int) -> float:
        return 0.0 if step < frozen_for else schedule(step)

    return LambdaLR(optimizer, [encoders, schedule])


def _class_weights(labels: list[int], num_classes: int) -> torch.Tensor:
    """n / (classes x count) per class: each class weighs as much in the loss as if the classes were balanced."""
    counts = torch.bincount(torch.tensor(labels), minlength=num_classes).float()
    return len(labels) / (num_classes * counts.clamp(min=1))


@torch.no_grad()
def evaluate_split(
    model: torch.nn.Module,
    loader: DataLoader,
    accelerator: Accelerator,
    description: str = "evaluating",
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """Metrics (weighted/unweighted accuracy, macro-F1, mean loss; per class and the confusion matrix when `labels`
    are given) of `model` over a prepared `loader`."""
    model.eval()
    predictions, references, losses = [], [], []
    for batch in tqdm(loader, desc=description, leave=False, disable=not accelerator.is_local_main_process):
        outputs = model(**batch)
        preds, refs, loss = accelerator.gather_for_metrics(
            (outputs.logits.argmax(-1), batch["labels"], outputs.loss.detach().expand(len(batch["labels"])))
        )
        predictions.append(preds.cpu())
        references.append(refs.cpu())
        losses.append(loss.float().cpu())
    metrics = compute_metrics(torch.cat(predictions).tolist(), torch.cat(references).tolist(), labels=labels)
    metrics["loss"] = torch.cat(losses).mean().item()
    return metrics


def _save_best(accelerator: Accelerator, model: torch.nn.Module, output_dir: Path, step: int) -> str:
    """The model as it is now, saved as `best-<step>` (written aside, then renamed); returns the folder's name."""
    name = f"best-{step}"
    # Every process takes part: under FSDP or DeepSpeed ZeRO-3 this gathers the shards of the weights.
    state_dict = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        partial = output_dir / f".tmp-{name}"
        shutil.rmtree(partial, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(partial, state_dict=state_dict)
        shutil.rmtree(output_dir / name, ignore_errors=True)
        partial.rename(output_dir / name)
    accelerator.wait_for_everyone()
    return name


def _prune_best(output_dir: Path, keep: set[str]) -> None:
    # A best model stays while any kept checkpoint (or the run itself) may still come back to it.
    for folder in output_dir.glob("best-*"):
        if folder.name not in keep:
            shutil.rmtree(folder)


def _flat_hyperparameters(recipe: Recipe) -> dict[str, Any]:
    flat = {}
    for section, values in recipe.to_dict().items():
        for key, value in values.items():
            if isinstance(value, (int, float, str, bool)):
                flat[f"{section}.{key}"] = value
    return flat


def train(recipe: Recipe, output_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train the recipe's model, keep the epoch with the best validation score, test it once, save it.

    With `resume`, continue from the newest complete checkpoint in `output_dir` (a finished run is not trained
    again). Returns the contents of `metrics.json`.
    """
    cfg, output_dir = recipe.training, Path(output_dir)
    if resume and (output_dir / "metrics.json").is_file():
        logger.info(f"{output_dir} holds a finished run: nothing to resume")
        return json.loads((output_dir / "metrics.json").read_text())
    accelerator = make_accelerator(cfg, output_dir / "logs")
    if cfg.batch_size % accelerator.num_processes:
        raise RecipeError(
            f"training.batch_size ({cfg.batch_size}) must be a multiple of the number of processes "
            f"({accelerator.num_processes}): it is the global batch, split across them."
        )
    set_seed(cfg.seed)
    prepared = _prepared(recipe, accelerator)
    labels = prepared.labels
    if "validation" not in prepared.split_rows:
        raise RecipeError(f"{recipe.path}: the data has no 'validation' split to select the best epoch on")
    model, processor = build_model_and_processor(recipe.model, labels, prepared.splits["train"]["text"])
    if cfg.max_duration and model.config.max_duration is None:
        # Prediction then classifies longer clips in windows as long as the crops the model learnt from.
        model.config.max_duration = cfg.max_duration
    if cfg.gradient_checkpointing:
        model.activation_checkpointing_enable()
    prepared = _with_tokens(prepared, model, processor, accelerator)
    uses_audio, uses_text = model.config.uses_audio, model.config.uses_text
    train_collator = AudioTextCollator(processor, uses_audio, uses_text, cfg.max_duration, cfg.modality_dropout)
    eval_collator = AudioTextCollator(processor, uses_audio, uses_text)
    if _can_cache_encoders(model, cfg):
        # The frozen encoders run once over the data (kept in the datasets cache); epochs train the rest from it.
        with accelerator.main_process_first():
            prepared = cache_encoder_outputs(model.to(accelerator.device), prepared, processor, cfg.eval_batch_size)
        train_collator = eval_collator = EncoderCacheCollator(model.config)
    splits = prepared.splits
    order = torch.Generator()  # reseeded every epoch: an epoch's batches do not depend on where a run resumed
    train_loader = make_loader(
        splits["train"], train_collator, cfg.batch_size, cfg.num_workers, True, cfg.group_by_length, order
    )
    eval_loaders = {
        name: make_loader(splits[name], eval_collator, cfg.eval_batch_size, cfg.num_workers)
        for name in ("validation", "test")
        if name in splits
    }
    optimizer = _optimizer(model, cfg)
    steps_per_epoch = math.ceil(len(train_loader) / cfg.gradient_accumulation_steps)
    scheduler = _scheduler(optimizer, cfg, cfg.epochs * steps_per_epoch)
    weights = _class_weights(splits["train"]["label"], len(labels)) if cfg.class_weighted_loss else None
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    eval_loaders = {name: accelerator.prepare(loader) for name, loader in eval_loaders.items()}

    state: dict[str, Any] = {"epoch": 1, "batches_done": 0, "step": 0, "history": [], "best": None, "stale": 0}
    saved = checkpoints(output_dir / "checkpoints") if resume else []
    if saved:
        accelerator.load_state(str(saved[-1]))
        state = load_trainer_state(saved[-1])
        logger.info(f"resuming from {saved[-1]} (epoch {state['epoch']}, step {state['step']})")
    if cfg.report_to == "tensorboard":
        accelerator.init_trackers(output_dir.name or "mmclassify", config=_flat_hyperparameters(recipe))
    logger.info(
        f"{len(splits['train'])} training examples, {cfg.epochs * steps_per_epoch} optimizer steps "
        f"on {accelerator.num_processes} process(es)"
    )

    def checkpoint() -> None:
        save_checkpoint(accelerator, output_dir / "checkpoints", state["step"], state, cfg.keep_checkpoints)
        if accelerator.is_main_process:
            states = [load_trainer_state(c) for c in checkpoints(output_dir / "checkpoints")] + [state]
            _prune_best(output_dir, {s["best"]["folder"] for s in states if s["best"]})

    progress = tqdm(
        total=cfg.epochs * len(train_loader),
        initial=(state["epoch"] - 1) * len(train_loader) + state["batches_done"],
        desc="training",
        disable=not accelerator.is_local_main_process,
    )
    while state["epoch"] <= cfg.epochs and not (
        cfg.early_stopping_patience and state["stale"] >= cfg.early_stopping_patience
    ):
        order.manual_seed(cfg.seed + state["epoch"])
        loader = accelerator.skip_first_batches(train_loader, state["batches_done"])
        model.train()
        for encoder in _frozen_encoders(accelerator.unwrap_model(model)):
            encoder.eval()  # a frozen encoder is a fixed function: no dropout, no batch-norm updates
        started, seen = time.perf_counter(), 0
        for batch in loader:
            with accelerator.accumulate(model):
                outputs = model(**batch)
                loss = outputs.loss
                if weights is not None:
                    loss = torch.nn.functional.cross_entropy(
                        outputs.logits.float(), batch["labels"], weight=weights.to(outputs.logits.device)
                    )
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            state["batches_done"] += 1
            seen += len(batch["labels"]) * accelerator.num_processes
            mean_loss = accelerator.reduce(loss.detach(), reduction="mean").item()  # every process' share
            state.setdefault("epoch_losses", []).append(mean_loss)
            progress.update(1)
            progress.set_postfix(
                loss=f"{mean_loss:.3f}", examples_per_s=f"{seen / (time.perf_counter() - started):.1f}"
            )
            if accelerator.sync_gradients:
                state["step"] += 1
                accelerator.log({"train/loss": mean_loss, "train/lr": scheduler.get_last_lr()[-1]}, step=state["step"])
                last_batch = state["batches_done"] == len(train_loader)
                if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0 and not last_batch:
                    checkpoint()

        validation = evaluate_split(model, eval_loaders["validation"], accelerator, "validation")
        losses = state.pop("epoch_losses", [])
        entry = {"epoch": state["epoch"], "train_loss": sum(losses) / max(len(losses), 1), "validation": validation}
        state["history"].append(entry)
        accelerator.log({f"validation/{k}": v for k, v in validation.items()}, step=state["step"])
        logger.info(f"epoch {state['epoch']}: train loss {entry['train_loss']:.4f}, validation {validation}")
        best = state["best"]
        if best is None or validation[cfg.select_metric] > best["validation"][cfg.select_metric]:
            state["best"] = {**entry, "folder": _save_best(accelerator, model, output_dir, state["step"])}
            state["stale"] = 0
        else:
            state["stale"] += 1
        state["epoch"], state["batches_done"] = state["epoch"] + 1, 0
        checkpoint()
    progress.close()

    best = state["best"]
    # The selected weights, whole on every process (rather than loaded into the wrapped model, which FSDP and
    # DeepSpeed shard); each process tests its share of the test split with them.
    best_model = AudioTextForSequenceClassification.from_pretrained(output_dir / best["folder"])
    best_model.to(accelerator.device)
    results = {
        "labels": labels,
        "select_metric": cfg.select_metric,
        "best_epoch": best["epoch"],
        "stopped_early": state["epoch"] <= cfg.epochs,
        "validation": best["validation"],
        "history": state["history"],
    }
    if "test" in eval_loaders:  # read once, at the end, with the selected weights
        with accelerator.autocast():
            results["test"] = evaluate_split(best_model, eval_loaders["test"], accelerator, "test", labels=labels)
        accelerator.log({f"test/{k}": v for k, v in results["test"].items() if isinstance(v, float)})
    for tracker in accelerator.trackers:  # not `end_training()`: it would end the process group, which the
        tracker.finish()  # saving below and the next fold of a fold loop still use
    if accelerator.is_main_process:
        best_model.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
        (output_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        info = run_info(accelerator.num_processes, accelerator.mixed_precision)
        (output_dir / "run_info.json").write_text(json.dumps(info, indent=2))
        plot_learning_curves(results["history"], output_dir / "learning_curves.png")
        if "test" in results:
            plot_confusion_matrix(results["test"]["confusion_matrix"], labels, output_dir / "confusion_matrix.png")
        (output_dir / "metrics.json").write_text(json.dumps(results, indent=2))  # it marks the run finished
        _prune_best(output_dir, keep=set())  # the best model is now the one in `output_dir` itself
    accelerator.wait_for_everyone()
    return results


def evaluate_model(model_dir: str | Path, recipe: Recipe, split: str = "test", batch_size: int = 64) -> dict[str, Any]:
    """Metrics of a saved model on one split of a recipe's data (labels matched by name)."""
    accelerator = make_accelerator()
    model = AudioTextForSequenceClassification.from_pretrained(model_dir)
    processor = AudioTextProcessor.from_pretrained(model_dir)
    prepared = _prepared(recipe, accelerator)
    splits, labels = _with_tokens(prepared, model, processor, accelerator).splits, prepared.labels
    if split not in splits:
        raise RecipeError(f"{recipe.path}: no split {split!r} in the data (splits: {', '.join(splits)})")
    unknown = sorted(set(labels) - set(model.config.label2id))
    if unknown:
        classes = [model.config.id2label[i] for i in range(model.config.num_labels)]
        raise ValueError(f"{model_dir}: the model was trained for {classes}, but the data has labels {unknown}")
    to_model = {i: model.config.label2id[name] for i, name in enumerate(labels)}
    dataset = splits[split].map(lambda row: {"label": to_model[row["label"]]})
    collator = AudioTextCollator(processor, model.config.uses_audio, model.config.uses_text)
    loader = make_loader(dataset, collator, batch_size, recipe.training.num_workers)
    model, loader = accelerator.prepare(model, loader)
    classes = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return evaluate_split(model, loader, accelerator, split, labels=classes)
