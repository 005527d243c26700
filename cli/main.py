"""`mmclassify` command-line application: parses options, calls the library, prints results.

Errors from the library (bad recipe fields, missing or undecodable audio, wrong labels) are printed as one line
naming the input and exit with status 1.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Classify audio together with its text: train, evaluate and predict with audio+text models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a recipe field, e.g. --set training.epochs=5 (repeatable)."),
]


def _setup_logging() -> None:
    # mmclassify's progress at INFO (accelerate's logger logs it on the main process only); the libraries' own
    # chatter (accelerate notes every file of every checkpoint it saves) stays at warnings.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mmclassify").setLevel(logging.INFO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=1)


def _require_folder(model_dir: Path) -> None:
    # Without this, transformers would take a missing folder for a Hub repository id and say so, confusingly.
    if not model_dir.is_dir():
        _fail(FileNotFoundError(f"{model_dir}: no such model folder"))


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _format_metrics(metrics: dict[str, float]) -> str:
    names = ("weighted_accuracy", "unweighted_accuracy", "macro_f1")
    return ", ".join(f"{name} {metrics[name]:.4f}" for name in names if name in metrics)


def _data_overrides(
    data: Path | None,
    audio_column: str | None,
    text_column: str | None,
    text_template: str | None,
    label_column: str | None,
    speaker_column: str | None,
) -> list[str]:
    """The `--data` and column flags as recipe overrides (quoted as YAML strings)."""
    overrides = []
    if data is not None:
        source = "audiofolder" if data.is_dir() else "manifest"
        overrides += [f"data.source={source}", f"data.path={json.dumps(str(data))}", "data.splits={}"]
    columns = {
        "audio_column": audio_column,
        "text_column": text_column,
        "text_template": text_template,
        "label_column": label_column,
        "speaker_column": speaker_column,
    }
    overrides += [f"data.{field}={json.dumps(value)}" for field, value in columns.items() if value is not None]
    return overrides


DataOption = Annotated[
    Path | None,
    typer.Option(
        help="Your data, without writing a recipe: a folder of class sub-folders, or a CSV / JSON Lines manifest."
    ),
]
AudioColumnOption = Annotated[str | None, typer.Option(help="Column of audio file paths (manifests).")]
TextColumnOption = Annotated[str | None, typer.Option(help="Column of transcripts; '' for none.")]
TextTemplateOption = Annotated[
    str | None, typer.Option(help="Text made from metadata columns instead, e.g. '{gender} speaker'.")
]
LabelColumnOption = Annotated[str | None, typer.Option(help="Column of class labels.")]
SpeakerColumnOption = Annotated[str | None, typer.Option(help="Column of speakers (reported, and split by).")]
WindowOption = Annotated[
    float | None, typer.Option(help="Window (s) for long audio (default: the model's max_duration, else 30).")
]


@app.command()
def train(
    recipe: Annotated[
        str,
        typer.Argument(help="Recipe YAML file, or a shipped recipe's name (see `mmclassify recipes`)."),
    ] = "default",
    output_dir: Annotated[
        Path, typer.Option(help="Folder for the trained model, metrics.json and recipe.yaml.")
    ] = Path("outputs/model"),
    data: DataOption = None,
    audio_column: AudioColumnOption = None,
    text_column: TextColumnOption = None,
    text_template: TextTemplateOption = None,
    label_column: LabelColumnOption = None,
    speaker_column: SpeakerColumnOption = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the newest complete checkpoint in --output-dir.")
    ] = False,
    fold: Annotated[
        int | None, typer.Option(help="For a recipe split into folds: train this fold only (default: every fold).")
    ] = None,
    hub_repo: Annotated[
        str | None,
        typer.Option(
            "--push-to-hub", metavar="ORG/NAME", help="At the end, push the model to this Hub repository (as `push`)."
        ),
    ] = None,
    hub_private: Annotated[
        bool, typer.Option("--hub-private", help="With --push-to-hub: create the repository private.")
    ] = False,
    set_: SetOption = None,
) -> None:
    """Train a model from a recipe; keep the epoch with the best validation score; test it once; save it.

    A recipe split into folds (leave-one-session-out, k-fold) trains every fold into OUTPUT_DIR/fold-<k> and writes
    the per-fold and mean ± std metrics to OUTPUT_DIR/folds.json. Without a recipe, `--data` and the column flags
    train the `default` recipe on your folder or manifest. `--push-to-hub` shares one model, so with a fold recipe
    it needs `--fold` (or push a fold's folder afterwards with `mmclassify push`).
    """
    from mmclassify.data.recipe import load_recipe
    from mmclassify.training import train as run_training
    from mmclassify.training import train_folds

    _setup_logging()
    overrides = _data_overrides(data, audio_column, text_column, text_template, label_column, speaker_column)
    if fold is not None:
        overrides.append(f"data.split.fold={fold}")
    try:
        loaded = load_recipe(recipe, [*overrides, *(set_ or [])])
        if hub_repo is not None and loaded.data.split["strategy"] == "folds" and fold is None:
            # Checked before training: a run of every fold makes one model per fold, and no single one to share.
            raise ValueError(
                "--push-to-hub shares one model, but this recipe trains one per fold: pass --fold K, or push a "
                f"fold afterwards with `mmclassify push {output_dir / 'fold-K'} {hub_repo}`"
            )
        if loaded.data.split["strategy"] == "folds" and fold is None:
            summary = train_folds(loaded, output_dir, resume=resume)
        else:
            results = run_training(loaded, output_dir, resume=resume)
    except (ValueError, FileNotFoundError) as err:
        _fail(err)
    if not _is_main_process():
        return
    if loaded.data.split["strategy"] == "folds" and fold is None:
        for name, metrics in summary["folds"].items():
            typer.echo(f"fold {name} test: {_format_metrics(metrics)}")
        means, stds = summary["mean"], summary["std"]
        typer.echo("mean ± std: " + ", ".join(f"{k} {means[k]:.4f} ± {stds[k]:.4f}" for k in means))
        typer.echo(f"models saved to {output_dir}/fold-*; summary in {output_dir / 'folds.json'}")
        return
    typer.echo(f"best epoch {results['best_epoch']}: validation {_format_metrics(results['validation'])}")
    if "test" in results:
        typer.echo(f"test: {_format_metrics(results['test'])}")
    typer.echo(f"model saved to {output_dir}")
    if hub_repo is not None:
        from mmclassify.hub import push_to_hub

        try:
            typer.echo(f"pushed to {push_to_hub(output_dir, hub_repo, private=hub_private)}")
        except (ValueError, OSError) as err:
            _fail(ValueError(f"the push failed ({err}); retry with `mmclassify push {output_dir} {hub_repo}`"))


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A trained model folder.")],
    recipe: Annotated[str, typer.Argument(help="Recipe whose data to evaluate on (file or shipped name).")],
    split: Annotated[str, typer.Option(help="Data split to evaluate: train, validation or test.")] = "test",
    batch_size: Annotated[int, typer.Option(help="Examples per batch.")] = 64,
    set_: SetOption = None,
) -> None:
    """Evaluate a trained model on a recipe's split; print the metrics as JSON."""
    from mmclassify.data.recipe import load_recipe
    from mmclassify.training import evaluate_model

    _setup_logging()
    _require_folder(model_dir)
    try:
        metrics = evaluate_model(model_dir, load_recipe(recipe, set_ or []), split=split, batch_size=batch_size)
    except (ValueError, FileNotFoundError, OSError) as err:
        _fail(err)
    if _is_main_process():
        typer.echo(json.dumps({"split": split, **metrics}, indent=2))


PARTIAL_FAILURE = 3  # exit status of a batch prediction in which some rows could not be classified


def _load_classifier(model: str, device: str | None, dtype: str, max_duration: float | None):
    import torch

    from mmclassify.inference import AudioTextClassifier

    dtypes = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in dtypes:
        _fail(ValueError(f"--dtype must be one of {', '.join(dtypes)}, got {dtype!r}"))
    try:
        return AudioTextClassifier.from_pretrained(model, device=device, dtype=dtypes[dtype], max_duration=max_duration)
    except (ValueError, OSError) as err:
        _fail(err)


def _decoding_workers(device_type: str) -> int:
    # On a GPU the CPUs are free to decode. On the CPU the forward pass already uses every core, and each decoding
    # process takes one from it: a quarter of them (none on a small machine) keeps the model the one that waits.
    cpus = os.cpu_count() or 1
    return min(4, cpus - 1) if device_type == "cuda" else min(4, cpus // 4)


def _print_prediction(result: dict) -> None:
    typer.echo(f"{result['label']} ({result['score']:.3f}), from {result['modalities']}")
    for label, probability in sorted(result["scores"].items(), key=lambda item: -item[1]):
        typer.echo(f"  {label:<20} {probability:.3f}")


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="A trained model folder, or a Hub id (org/name).")],
    audio: Annotated[Path | None, typer.Option(help="One audio file to classify (WAV, FLAC, MP3, OGG, ...).")] = None,
    text: Annotated[str | None, typer.Option(help="The text that goes with --audio (or alone).")] = None,
    input_: Annotated[
        Path | None,
        typer.Option(
            "--input",
            help="Many pairs: a CSV / JSON Lines file (audio path and text columns) or a folder of audio files "
            "(with an optional metadata.csv: file_name, text).",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="With --input: the predictions file, .csv or .jsonl (input order).")
    ] = None,
    audio_column: Annotated[str, typer.Option(help="With --input: the column of audio paths.")] = "audio",
    text_column: Annotated[
        str, typer.Option(help="With --input: the column of texts; '' to classify from the audio alone.")
    ] = "text",
    batch_size: Annotated[int, typer.Option(help="Pairs per forward pass.")] = 8,
    num_workers: Annotated[
        int | None,
        typer.Option(
            help="Processes decoding audio while the model runs (default: up to 4; on the CPU, a quarter of the cores)."
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1, ... (default: a GPU if there is one).")] = None,
    dtype: Annotated[
        str, typer.Option(help="auto (bf16/fp16 on a GPU, fp32 on the CPU), float32, bfloat16 or float16.")
    ] = "auto",
    labels: Annotated[
        str | None, typer.Option(help="Comma-separated classes you expect; fails if the model has others.")
    ] = None,
    max_duration: WindowOption = None,
    max_audio_duration: Annotated[
        float, typer.Option(help="With --input: longer audio (s) is reported as an error, not classified.")
    ] = 4 * 3600.0,
    max_batch_duration: Annotated[
        float | None,
        typer.Option(help="Most padded audio (s) in one forward pass, which bounds memory (default: one window)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One pair: print the result as JSON.")] = False,
) -> None:
    """Classify one pair (--audio and/or --text) or a file or folder of them (--input, --output).

    Either modality may be missing: the model answers from the other and says which it used. Audio longer than
    the model's window is classified as overlapping windows. In a batch, every usable row is classified; a row
    that cannot be (missing, corrupt, empty or over-long audio, nothing to classify) gets its reason in the
    `error` column, and the exit status is 3.
    """
    from mmclassify.prediction_files import check_output_path, read_rows, write_predictions

    _setup_logging()
    if input_ is not None and (audio is not None or text is not None):
        _fail(ValueError("give either --input (many pairs) or --audio / --text (one pair), not both"))
    if input_ is None and audio is None and text is None:
        _fail(ValueError("give --audio and/or --text for one pair, or --input with --output for many"))
    if input_ is not None and output is None:
        _fail(ValueError("--input needs --output (a .csv or .jsonl file for the predictions)"))
    try:
        if output is not None:
            check_output_path(output)
        rows = read_rows(input_, audio_column, text_column or None) if input_ is not None else None
    except (ValueError, OSError) as err:
        _fail(err)
    clf = _load_classifier(model, device, dtype, max_duration)
    try:
        if labels is not None:
            clf.require_labels([label.strip() for label in labels.split(",") if label.strip()])
        if rows is None:
            result = clf(str(audio) if audio is not None else None, text)
    except (ValueError, OSError) as err:
        _fail(err)
    if rows is None:
        if as_json:
            typer.echo(json.dumps(result, indent=2))
        else:
            _print_prediction(result)
        return
    workers = num_workers if num_workers is not None else _decoding_workers(clf.device.type)
    results = clf.predict(
        rows,
        batch_size=batch_size,
        num_workers=workers,
        max_audio_duration=max_audio_duration,
        max_batch_duration=max_batch_duration,
        audio_column=audio_column if not input_.is_dir() else "audio",
        text_column=text_column,
        progress=True,
    )
    write_predictions(output, rows, results, clf.labels)
    failed = [(i, r["error"]) for i, r in enumerate(results) if "error" in r]
    typer.echo(f"{len(results) - len(failed)} of {len(results)} rows classified; predictions in {output}")
    partial = [r for r in results if "error" not in r and r["modalities"] != clf.model.config.modalities]
    if partial:
        typer.echo(f"{len(partial)} row(s) classified without one modality (see the modalities column)")
    if failed:
        typer.secho(f"{len(failed)} row(s) could not be classified (their reason is in the error column):", err=True)
        for index, reason in failed[:20]:
            typer.echo(f"  row {index}: {reason}", err=True)
        raise typer.Exit(code=PARTIAL_FAILURE)


@app.command()
def explain(
    model: Annotated[str, typer.Argument(help="A trained model folder or Hub id (with cross-attention fusion).")],
    audio: Annotated[Path, typer.Option(help="Audio file to explain (WAV, FLAC, MP3, OGG, ...).")],
    text: Annotated[str, typer.Option(help="The text that goes with the audio.")],
    output: Annotated[
        Path | None, typer.Option(help="PNG to draw the explanation in (default: explain.png, unless --json is given).")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="JSON file to write the probabilities and attention weights to.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1, ... (default: a GPU if there is one).")] = None,
    max_duration: WindowOption = None,
) -> None:
    """Show what a prediction looked at: the text's attention over the clip's time, the audio's attention to each
    token, and the class probabilities (from the fusion's cross-attention). A clip longer than the window is
    explained window by window, as `predict` classifies it."""
    from mmclassify.explaining import plot_explanation

    if output is None and json_file is None:
        output = Path("explain.png")
    clf = _load_classifier(model, device, "float32", max_duration)
    try:
        explanation = clf.explain(str(audio), text)
        if output is not None:
            plot_explanation(explanation, output)
        if json_file is not None:
            json_file.write_text(json.dumps(explanation.to_dict(), indent=2) + "\n")
    except (ValueError, FileNotFoundError, OSError) as err:
        _fail(err)
    best = explanation.labels.index(explanation.label)
    typer.echo(f"{explanation.label} ({explanation.probabilities[best]:.3f})")
    for path, what in ((output, "explanation drawn in"), (json_file, "weights written to")):
        if path is not None:
            typer.echo(f"{what} {path}")


@app.command()
def demo(
    output_dir: Annotated[Path, typer.Option(help="Folder for the three trained models and the example.")] = Path(
        "outputs/demo"
    ),
    set_: SetOption = None,
) -> None:
    """Train on the built-in tones data set (no download): fused model vs audio-only and text-only ablations."""
    from mmclassify.demo import run_demo

    _setup_logging()
    try:
        results = run_demo(output_dir, set_ or [])
    except (ValueError, FileNotFoundError) as err:
        _fail(err)
    typer.echo("\nHeld-out accuracy on the tones data set (does the text describe the sound?):")
    for name, metrics in results["test"].items():
        typer.echo(f"  {name:<11} {metrics['weighted_accuracy']:.1%}")
    example, prediction = results["example"], results["prediction"]
    typer.echo(f"\nPrediction for {example['audio']} with text {example['text']!r}:")
    typer.echo(f"  {prediction['label']} ({prediction['score']:.3f}); true label: {example['true_label']}")
    typer.echo(f"\nFused model saved to {output_dir / 'fused'}; demo took {results['seconds']:.0f} s.")
    typer.echo(f"Try: mmclassify predict {output_dir / 'fused'} --audio {example['audio']} --text {example['text']!r}")


@app.command()
def push(
    model_dir: Annotated[Path, typer.Argument(help="A trained model folder (as `mmclassify train` writes it).")],
    repo_id: Annotated[str, typer.Argument(metavar="ORG/NAME", help="Hub repository; created if it does not exist.")],
    private: Annotated[
        bool, typer.Option("--private", help="Create the repository private (default: the Hub's default).")
    ] = False,
    revision: Annotated[
        str | None, typer.Option(help="Branch to push to, created from main if it does not exist (default: main).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Hub token with write access (default: HF_TOKEN, or the saved login).")
    ] = None,
    commit_message: Annotated[str | None, typer.Option(help="Message of the commit.")] = None,
) -> None:
    """Share a trained model on the Hub: weights (safetensors), processor, metrics, recipe, a model card and the
    model's code (so that transformers loads it without mmclassify, with trust_remote_code=True). Prints the URL.

    Uploads the files at the top of MODEL_DIR, never its checkpoints/ or logs/. HF_ENDPOINT selects another
    Hub-compatible server.
    """
    from mmclassify.hub import push_to_hub

    _require_folder(model_dir)
    try:
        url = push_to_hub(
            model_dir, repo_id, private=private, revision=revision, token=token, commit_message=commit_message
        )
    except (ValueError, OSError) as err:
        _fail(err)
    typer.echo(f"pushed {model_dir} to {url}")


@app.command("recipes")
def list_recipes() -> None:
    """List the shipped recipes: task, classes, split and source."""
    from mmclassify.data.recipe import describe_shipped_recipes

    for row in describe_shipped_recipes():
        typer.echo(f"{row['name']}: {row['task']}")
        typer.echo(f"    classes: {row['classes']}")
        typer.echo(f"    split:   {row['split']}")
        typer.echo(f"    source:  {row['source']}")


data_app = typer.Typer(help="Inspect a recipe's data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("check")
def data_check(
    recipe: Annotated[str, typer.Argument(help="Recipe YAML file, or a shipped recipe's name.")] = "default",
    data: DataOption = None,
    audio_column: AudioColumnOption = None,
    text_column: TextColumnOption = None,
    text_template: TextTemplateOption = None,
    label_column: LabelColumnOption = None,
    speaker_column: SpeakerColumnOption = None,
    set_: SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Prepare a recipe's data without training: counts per split and class, durations, speakers, bad rows.

    Exits with status 1 when some rows cannot be used, after listing each with its file and reason.
    """
    from mmclassify.building import audio_sampling_rate
    from mmclassify.data.preparation import prepare_data
    from mmclassify.data.recipe import load_recipe
    from mmclassify.data.report import summarize

    _setup_logging()
    overrides = _data_overrides(data, audio_column, text_column, text_template, label_column, speaker_column)
    try:
        loaded = load_recipe(recipe, [*overrides, *(set_ or [])])
        prepared = prepare_data(loaded, audio_sampling_rate(loaded.model), enforce=False)
    except (ValueError, FileNotFoundError, OSError) as err:
        _fail(err)
    report = summarize(prepared, loaded.data.speaker_column)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_report(report)
    if report["problems"]:
        raise typer.Exit(code=1)


def _print_report(report: dict) -> None:
    labels = report["labels"]
    width = max(len(label) for label in labels) + 2
    splits = report["splits"]
    typer.echo(f"{'':<{width}}" + "".join(f"{name:>12}" for name in splits))
    for label in labels:
        typer.echo(f"{label:<{width}}" + "".join(f"{s['classes'][label]:>12}" for s in splits.values()))
    typer.echo(f"{'total':<{width}}" + "".join(f"{s['examples']:>12}" for s in splits.values()))
    typer.echo("\nduration (s)  min / mean / max, total")
    for name, s in splits.items():
        d = s["duration_s"]
        typer.echo(f"  {name:<12}{d['min']:.2f} / {d['mean']:.2f} / {d['max']:.2f}, {d['total'] / 3600:.2f} h")
    if any("speakers" in s for s in splits.values()):
        typer.echo("speakers: " + ", ".join(f"{name} {s['speakers']}" for name, s in splits.items() if "speakers" in s))
        for pair, shared in report["speakers_in_two_splits"].items():
            typer.echo(f"  warning: speakers in both {pair}: {', '.join(shared)}")
    if report["excluded"]:
        typer.echo(f"left out on purpose (labels outside the classes): {report['excluded']}")
    if report["problems"]:
        typer.echo(f"\n{len(report['problems'])} row(s) cannot be used:")
        for problem in report["problems"]:
            typer.echo(f"  {problem['audio']}: {problem['reason']}")
    else:
        typer.echo("\nevery row is usable")


def main() -> None:
    app()
