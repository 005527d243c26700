"""Batch prediction throughput: does the I/O path cost at most 10%? (issue 5)

Bar: predicting all 1,434 RAVDESS clips from their files (`mmclassify predict MODEL --input manifest.csv --output
...`: rows read, audio decoded by DataLoader workers, length-sorted batches, predictions written) runs at no less
than 0.9x the throughput of calling the model's forward on the same clips already decoded, processed and batched
the same way.

- Model: the RAVDESS recipe's architecture (spectrogram attention-CNN audio encoder, scratch BERT text encoder,
  cross-attention fusion; random weights: the speed does not depend on them), or with `--audio-encoder
  wav2vec2-base` a base-sized random wav2vec2 encoder instead.
- Prediction path: what the CLI runs after loading the model: `read_rows` + `AudioTextClassifier.predict` +
  `write_predictions`, over the corpus' own manifest (audio paths and transcripts).
- Reference: every clip decoded and every batch built by the processor beforehand (not timed), in the batches the
  prediction path makes (sorted by length within pools of four batches); only the forward passes are timed.
- The two alternate (ABAB...) after a warm-up of a few batches, and the medians are compared.

    python benchmarks/batch_prediction.py [--batch-size 16] [--num-workers 1] [--repeats 3]

Needs `../shared/data/ravdess`. Writes `benchmarks/results/batch_prediction.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _machine import cpu_model  # benchmarks/_machine.py
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor

from mmclassify import AudioTextConfig, AudioTextForSequenceClassification, AudioTextProcessor
from mmclassify.building import build_model_and_processor
from mmclassify.data.audio import load_audio
from mmclassify.data.recipe import load_recipe
from mmclassify.inference import POOL_BATCHES, AudioTextClassifier, length_sorted_batches
from mmclassify.prediction_files import read_rows, write_predictions

HERE = Path(__file__).resolve().parent
RAVDESS = HERE.parent.parent / "shared" / "data" / "ravdess"
BAR = 0.9


def build_classifier(audio_encoder: str, transcripts: list[str]) -> AudioTextClassifier:
    recipe = load_recipe("ravdess")
    torch.manual_seed(0)
    model, processor = build_model_and_processor(recipe.model, recipe.data.labels, transcripts)
    if audio_encoder == "wav2vec2-base":
        config = AudioTextConfig.from_audio_text_configs(
            Wav2Vec2Config(),
            model.config.text_config,
            **{**recipe.model.options, "num_labels": len(recipe.data.labels)},
        )
        model = AudioTextForSequenceClassification(config, text_model=model.text_encoder)
        processor = AudioTextProcessor(Wav2Vec2FeatureExtractor(return_attention_mask=True), processor.tokenizer)
    return AudioTextClassifier(model, processor, device="cpu")


def prediction_path(clf: AudioTextClassifier, manifest: Path, output: Path, batch_size: int, workers: int) -> float:
    start = time.perf_counter()
    rows = read_rows(manifest, "path", "transcript")
    results = clf.predict(rows, batch_size=batch_size, num_workers=workers, audio_column="path",
                          text_column="transcript")  # fmt: skip
    write_predictions(output, rows, results, clf.labels)
    seconds = time.perf_counter() - start
    failed = [r for r in results if "error" in r]
    if failed:
        sys.exit(f"{len(failed)} clips failed: {failed[:3]}")
    return seconds


def decoded_batches(clf: AudioTextClassifier, manifest: Path, batch_size: int) -> list:
    """The clips decoded and processed into the batches `predict` makes (length-sorted within pools)."""
    rows = read_rows(manifest, "path", "transcript")
    rate = clf.processor.sampling_rate
    items = [{"waveform": load_audio(row["path"], rate), "text": row["transcript"]} for row in rows]
    pool_size = POOL_BATCHES * batch_size
    batches = []
    for first in range(0, len(items), pool_size):
        for batch in length_sorted_batches(items[first : first + pool_size], batch_size, round(clf.window * rate)):
            audio = [{"array": item["waveform"], "sampling_rate": rate} for item in batch]
            batches.append(clf.processor(audio=audio, text=[item["text"] for item in batch]))
    return batches


def forward_only(clf: AudioTextClassifier, batches: list) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            clf.model(**batch).logits.softmax(-1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio-encoder", choices=["spectrogram-cnn", "wav2vec2-base"], default="spectrogram-cnn")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=1, help="decoding processes (the CLI's default here)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    manifest = RAVDESS / "manifest.csv"
    if not manifest.is_file():
        sys.exit(f"needs the development recordings in {RAVDESS}")
    transcripts = list(read_rows(manifest, "path", "transcript")["transcript"])
    clf = build_classifier(args.audio_encoder, transcripts)
    batches = decoded_batches(clf, manifest, args.batch_size)
    clips = sum(len(next(iter(batch.values()))) for batch in batches)
    with tempfile.TemporaryDirectory() as work:
        output = Path(work) / "predictions.csv"
        forward_only(clf, batches[:8])  # warm-up: one-off allocations and kernel choices
        timings = {"prediction_path": [], "forward_only": []}
        for _ in range(args.repeats):
            timings["prediction_path"].append(prediction_path(clf, manifest, output, args.batch_size, args.num_workers))
            timings["forward_only"].append(forward_only(clf, batches))
            print(json.dumps({k: round(v[-1], 2) for k, v in timings.items()}), flush=True)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    ratio = medians["forward_only"] / medians["prediction_path"]  # throughput ratio: same clips, inverse times
    report = {
        "question": f"throughput of batch prediction from files >= {BAR}x that of forward on decoded batches",
        "clips": clips,
        "clips_per_second": {name: round(clips / seconds, 1) for name, seconds in medians.items()},
        "seconds": {name: [round(v, 2) for v in values] for name, values in timings.items()},
        "ratio": round(ratio, 3),
        "bar_met": ratio >= BAR,
        "settings": {
            "audio_encoder": args.audio_encoder,
            "batch_size": args.batch_size,
            "num_workers": args.num_workers,
            "repeats": args.repeats,
            "torch_threads": torch.get_num_threads(),
        },  # fmt: skip
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_version": torch.__version__},
    }
    suffix = "" if args.audio_encoder == "spectrogram-cnn" else f"_{args.audio_encoder}"
    (HERE / "results" / f"batch_prediction{suffix}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({"ratio": report["ratio"], "bar_met": report["bar_met"]}))


if __name__ == "__main__":
    main()
