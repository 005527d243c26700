"""The built-in data set: tones paired with a text that does or does not describe them.

Each clip holds one tone in one of four pitch bands, at a random onset, length and loudness, over noise. Each text
names a pitch band in one of several phrasings. The label says whether the text describes the clip (`match`) or
not (`mismatch`). Every pitch is paired with a matching text as often as with a mismatching one, and every pitch
word is as often in a match as in a mismatch (exactly so when a split's size is a multiple of 2 x P x (P - 1) for P
pitches, 24 for the default four), so audio alone and text alone sit at chance: only a model that compares the two
can solve it. Generated at run
time from a seed, so it needs no download.
"""

from __future__ import annotations

import numpy as np
from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

PITCHES = {"deep": (150.0, 250.0), "low": (450.0, 700.0), "high": (1300.0, 2000.0), "shrill": (3500.0, 5000.0)}
PHRASINGS = ("a {} tone", "{} pitch", "{} beep", "a {} whistle", "{}")
LABELS = ("mismatch", "match")
SAMPLING_RATE = 16000


def _tone(rng: np.random.Generator, pitch: str) -> np.ndarray:
    duration = rng.uniform(0.5, 0.8)
    clip = rng.normal(0.0, rng.uniform(0.003, 0.02), int(duration * SAMPLING_RATE))
    tone_length = int(rng.uniform(0.3, 0.45) * SAMPLING_RATE)
    onset = rng.integers(0, len(clip) - tone_length)
    t = np.arange(tone_length) / SAMPLING_RATE
    envelope = np.hanning(tone_length)
    clip[onset : onset + tone_length] += (
        rng.uniform(0.2, 0.8) * envelope * np.sin(2 * np.pi * rng.uniform(*PITCHES[pitch]) * t)
    )
    return clip.astype(np.float32)


def _split(rng: np.random.Generator, size: int, names: list[str]) -> dict[str, list]:
    # Rows come in blocks that hold every (pitch, other pitch) pair once as a mismatch and as often a match of that
    # pitch: in each block every pitch and every pitch word is as often in a match as in a mismatch.
    pairs = [(pitch, other) for pitch in names for other in names if other != pitch]
    rows = {"audio": [], "text": [], "label": [], "pitch": []}
    for i in range(size):
        pitch, other = pairs[(i // 2) % len(pairs)]
        match = i % 2 == 0
        rows["audio"].append({"array": _tone(rng, pitch), "sampling_rate": SAMPLING_RATE})
        rows["text"].append(rng.choice(PHRASINGS).format(pitch if match else other))
        rows["label"].append(int(match))
        rows["pitch"].append(pitch)
    return rows


def make_tones_dataset(
    train_size: int = 768, eval_size: int = 192, seed: int = 0, pitches: list[str] | tuple[str, ...] = tuple(PITCHES)
) -> DatasetDict:
    """The tones data set as a `DatasetDict` with `train`, `validation` and `test` splits.

    `pitches` picks which of the pitch bands (`PITCHES`) occur; fewer bands make the task easier.

    Columns: `audio` (🤗 `Audio`, 16 kHz), `text`, `label` (`ClassLabel`: mismatch, match) and `pitch`.
    """
    unknown = sorted(set(pitches) - set(PITCHES))
    if len(pitches) < 2 or unknown:
        raise ValueError(f"pitches must name at least two of {list(PITCHES)}, got {list(pitches)}")
    rng = np.random.default_rng(seed)
    features = Features(
        audio=Audio(sampling_rate=SAMPLING_RATE),
        text=Value("string"),
        label=ClassLabel(names=list(LABELS)),
        pitch=Value("string"),
    )
    sizes = {"train": train_size, "validation": eval_size, "test": eval_size}
    return DatasetDict(
        {split: Dataset.from_dict(_split(rng, size, list(pitches)), features=features) for split, size in sizes.items()}
    )
