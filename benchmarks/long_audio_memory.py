"""Peak memory of long-audio prediction: a 10-minute recording vs a 1-minute one (issue 5).

Bar: with a wav2vec2-base-sized random encoder, classifying a 10-minute recording peaks at no more than 2.5 GB of
resident memory, and within 20% of the peak for a 1-minute recording (memory is bounded by the window, not the file).

The model (a default, base-sized `Wav2Vec2Config` audio encoder and a small BERT, randomly initialised, nothing
downloaded) is saved once; each recording is then classified by `mmclassify predict` in a fresh process, and the
peak resident set size of that process (`ru_maxrss` of the child) is read. The recordings are 16 kHz mono WAV
files of noise and tones.

    python benchmarks/long_audio_memory.py [--minutes 1 10] [--window 30] [--batch-size 8]

Writes `benchmarks/results/long_audio_memory.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from _machine import cpu_model  # benchmarks/_machine.py
from transformers import BertConfig, BertTokenizerFast, Wav2Vec2Config, Wav2Vec2FeatureExtractor

from mmclassify import AudioTextConfig, AudioTextForSequenceClassification, AudioTextProcessor

HERE = Path(__file__).resolve().parent
SAMPLING_RATE = 16000
PEAK_LIMIT_GB = 2.5
GROWTH_LIMIT = 0.20


def save_model(folder: Path) -> None:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "long", "recording"]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})
    text_config = BertConfig(vocab_size=len(words), hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=512)  # fmt: skip
    config = AudioTextConfig.from_audio_text_configs(Wav2Vec2Config(), text_config, num_labels=4)
    AudioTextForSequenceClassification(config).save_pretrained(folder)
    AudioTextProcessor(Wav2Vec2FeatureExtractor(return_attention_mask=True), tokenizer).save_pretrained(folder)


def write_recording(path: Path, minutes: float) -> None:
    """Noise with a tone that changes every second, written in one-minute blocks (the writer holds one block)."""
    rng = np.random.default_rng(0)
    with soundfile.SoundFile(path, "w", SAMPLING_RATE, 1, subtype="PCM_16") as out:
        for _ in range(round(minutes * 60)):
            t = np.arange(SAMPLING_RATE) / SAMPLING_RATE
            second = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(SAMPLING_RATE)
            out.write(second.astype(np.float32))


def predict(model_dir: Path, recording: Path, window: float, batch_size: int) -> dict:
    output = recording.with_suffix(".csv")
    recording.with_suffix(".pairs.csv").write_text(f"audio,text\n{recording},a long recording\n")
    command = [sys.executable, "-m", "mmclassify", "predict", str(model_dir), "--input",
               str(recording.with_suffix(".pairs.csv")), "--output", str(output), "--max-duration", str(window),
               "--batch-size", str(batch_size), "--num-workers", "0", "--device", "cpu"]  # fmt: skip
    # A fresh wrapper process per run reads the peak of its one child: ru_maxrss of children is the largest so far.
    measure = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
    measure += "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    start = time.perf_counter()
    peak_kb = int(subprocess.run([sys.executable, "-c", measure, *command], check=True, capture_output=True,
                                 text=True).stdout)  # fmt: skip
    seconds = time.perf_counter() - start
    row = output.read_text().splitlines()[1]
    return {"seconds": round(seconds, 1), "peak_rss_gb": round(peak_kb / 2**20, 3), "output_row": row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    parser.add_argument("--window", type=float, default=30.0, help="window length (s) of long-audio prediction")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as work:
        model_dir = Path(work) / "model"
        save_model(model_dir)
        for minutes in sorted(args.minutes):
            recording = Path(work) / f"recording_{minutes:g}min.wav"
            write_recording(recording, minutes)
            runs[f"{minutes:g} min"] = predict(model_dir, recording, args.window, args.batch_size)
            print(json.dumps({f"{minutes:g} min": runs[f"{minutes:g} min"]}), flush=True)
    shortest, longest = runs[f"{min(args.minutes):g} min"], runs[f"{max(args.minutes):g} min"]
    growth = longest["peak_rss_gb"] / shortest["peak_rss_gb"] - 1
    report = {
        "question": f"peak RSS of a {max(args.minutes):g}-min recording <= {PEAK_LIMIT_GB} GB and within "
        f"{GROWTH_LIMIT:.0%} of a {min(args.minutes):g}-min one (wav2vec2-base-sized random encoder)",
        "runs": runs,
        "growth": round(growth, 3),
        "bar_met": longest["peak_rss_gb"] <= PEAK_LIMIT_GB and growth <= GROWTH_LIMIT,
        "settings": {"window_s": args.window, "batch_size": args.batch_size, "num_workers": 0},
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_version": torch.__version__},
    }
    (HERE / "results" / "long_audio_memory.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({"growth": report["growth"], "bar_met": report["bar_met"]}))


if __name__ == "__main__":
    main()
