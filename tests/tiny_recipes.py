"""Tiny recipes and data for the recipe, data, training, CLI and distributed tests: they train in seconds on a CPU."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile
import yaml

from mmclassify.data.synthetic import PITCHES, make_tones_dataset

DEMO_RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"

# Overrides of recipes/demo.yaml: a tiny spectrogram CNN and fusion, small batches.
TINY_MODEL = [
    "model.audio_config={n_mels: 16, conv_channels: [4, 8], hidden_size: 32, num_hidden_layers: 1,"
    " num_attention_heads: 2}",
    "model.fusion_hidden_size=32",
    "model.fusion_num_layers=1",
    "model.fusion_num_attention_heads=2",
    "training.batch_size=16",
]
# ... and a tiny built-in tones set, trained for two epochs.
TINY_TONES = [*TINY_MODEL, "data.generator={train_size: 64, eval_size: 32, seed: 0}", "training.epochs=2"]

PITCH_LABELS = list(PITCHES)  # deep, low, high, shrill

# An audio-only model that learns the pitch band of a tone (4 classes, chance 25%) in a few epochs. No dropout, so
# that one process and two compute the same thing (up to batch-norm statistics, which are per process).
PITCH_MODEL = {
    "modalities": "audio",
    "audio_config": {
        "n_mels": 32,
        "conv_channels": [8, 16],
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "dropout": 0.0,
    },
    "text_config": {"num_hidden_layers": 0, "hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 32},
    "fusion_hidden_size": 32,
    "fusion_num_layers": 1,
    "fusion_num_attention_heads": 2,
    "fusion_dropout": 0.0,
    "classifier_dropout": 0.0,
}
PITCH_TRAINING = {"epochs": 8, "batch_size": 8, "learning_rate": 0.002, "seed": 1}


def tone_clip(frequency: float, seconds: float = 0.5, sampling_rate: int = 16000) -> np.ndarray:
    t = np.arange(round(seconds * sampling_rate)) / sampling_rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write_wav(path: Path, frequency: float = 440.0, seconds: float = 0.5, sampling_rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, tone_clip(frequency, seconds, sampling_rate), sampling_rate)
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_pitch_manifests(folder: Path, train_size: int = 96, eval_size: int = 32, seed: int = 0) -> Path:
    """The built-in tones as WAV files plus one CSV manifest per split, labelled with the tone's pitch band.

    Columns `file` (relative to the manifest), `caption` (the tones text, unused by an audio-only model) and
    `pitch`. Writes `recipe.yaml` (an audio-only model, `PITCH_MODEL`) beside them and returns its path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    splits = make_tones_dataset(train_size=train_size, eval_size=eval_size, seed=seed)
    manifests = {}
    for split, dataset in splits.items():
        rows = []
        for i, example in enumerate(dataset):
            samples = example["audio"].get_all_samples()
            name = f"clips/{split}-{i:03d}.wav"
            (folder / "clips").mkdir(exist_ok=True)
            soundfile.write(folder / name, samples.data[0].numpy(), samples.sample_rate)
            rows.append({"file": name, "caption": example["text"], "pitch": example["pitch"]})
        manifests[split] = write_csv(folder / f"{split}.csv", rows).name
    recipe = {
        "data": {
            "source": "manifest",
            "splits": manifests,
            "audio_column": "file",
            "text_column": "caption",
            "label_column": "pitch",
            "labels": PITCH_LABELS,
        },
        "model": PITCH_MODEL,
        "training": PITCH_TRAINING,
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path
