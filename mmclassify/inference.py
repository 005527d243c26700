"""`AudioTextClassifier`: load a trained model and classify audio+text pairs, one or many.

Many pairs go through a `DataLoader` whose workers decode and resample the audio while the model runs, and are
batched by length so padding stays small. Either modality may be missing from a pair (the model then answers from
the other, as modality dropout trained it to), and audio longer than the model's window is classified as
overlapping windows whose probabilities are averaged.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm.auto import tqdm

from .configuration import AudioTextConfig
from .data.audio import AudioInput, load_audio, open_decoder
from .explaining import Explanation, explain
from .long_audio import array_windows, file_path, file_windows, is_file, model_window, window_starts
from .modeling import AudioTextForSequenceClassification
from .processing import AudioTextProcessor

if TYPE_CHECKING:
    from datasets import Dataset

# Decoded windows sorted by length before they are batched: a larger pool pads less but holds more audio.
POOL_BATCHES = 4


def _missing(value: Any) -> bool:
    """None, a blank string, or the NaN that an empty CSV cell becomes."""
    if isinstance(value, str):
        return not value.strip()
    return value is None or (isinstance(value, float) and math.isnan(value))


def _default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs that have it, else fp16 on a GPU; fp32 on the CPU, where bf16 is slower on most machines."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


class _DecodedRows(IterableDataset):
    """The rows' audio decoded (in the DataLoader's workers, each taking every k-th row) into model-ready items.

    Yields one item per window of a row's audio (a clip within the window is one window), one for a row without
    audio, or one with the `error` that makes a row unusable.
    """

    def __init__(
        self,
        rows: Sequence[dict],
        config: AudioTextConfig,
        sampling_rate: int,
        window: float,
        max_audio_duration: float | None,
        audio_key: str = "audio",
        text_key: str = "text",
    ):
        self.rows, self.config, self.sampling_rate = rows, config, sampling_rate
        self.window, self.max_audio_duration = window, max_audio_duration
        self.audio_key, self.text_key = audio_key, text_key

    def __iter__(self) -> Iterator[dict]:
        worker = get_worker_info()
        first, step = (worker.id, worker.num_workers) if worker else (0, 1)
        for index in range(first, len(self.rows), step):
            try:
                yield from self._items(index, self.rows[index])
            except (ValueError, OSError) as err:  # missing, undecodable, empty, non-finite or too long
                yield {"index": index, "error": err}

    def _items(self, index: int, row: dict) -> Iterator[dict]:
        audio, text = row.get(self.audio_key), row.get(self.text_key)
        has_audio = self.config.uses_audio and not _missing(audio)
        has_text = self.config.uses_text and not _missing(text)
        if not (has_audio or has_text):
            raise ValueError(f"row {index}: {self._nothing_to_classify()}")
        item = {"index": index, "text": str(text) if has_text else None, "has_audio": has_audio}
        if not has_audio:
            yield {**item, "windows": 1, "waveform": None}
            return
        rate, name = self.sampling_rate, file_path(audio) if is_file(audio) else f"row {index}: audio"
        duration = None
        if is_file(audio):  # the header says how long it is: a long file is never decoded whole
            audio = open_decoder(file_path(audio), name)
            duration = audio.metadata.duration_seconds_from_header
        if duration is not None and duration > self.window:
            self._check_duration(name, duration)
            starts = window_starts(duration, self.window)
            windows = file_windows(audio, name, rate, self.window, starts)
        else:
            waveform = load_audio(audio, rate, sampling_rate=row.get("sampling_rate"), name=name)
            self._check_duration(name, len(waveform) / rate)
            starts = window_starts(len(waveform) / rate, self.window)
            windows = array_windows(waveform, rate, self.window, starts)
        for waveform in windows:
            yield {**item, "windows": len(starts), "waveform": waveform}

    def _check_duration(self, name: str, duration: float) -> None:
        if self.max_audio_duration and duration > self.max_audio_duration:
            raise ValueError(f"{name}: {duration:.1f} s of audio, over the limit of {self.max_audio_duration:.1f} s")

    def _nothing_to_classify(self) -> str:
        if self.config.modalities == "audio":
            return "no audio (the model classifies audio only)"
        if self.config.modalities == "text":
            return "no text (the model classifies text only)"
        return "neither audio nor text"


class AudioTextClassifier:
    """A trained model and its processor, ready to classify.

    Example:

    ```python
    >>> clf = AudioTextClassifier.from_pretrained("outputs/demo/fused")  # a folder or a Hub id
    >>> clf("clip.wav", "a low tone")
    {'label': 'match', 'score': 0.97, 'scores': {'mismatch': 0.03, 'match': 0.97}, 'modalities': 'audio+text'}
    >>> clf(["a.wav", "b.wav"], ["a low tone", None])  # the second pair is classified from its audio alone
    ```

    Args:
        model, processor: A trained model and its processor.
        device: Where the model runs (default: a GPU if there is one, else the CPU).
        dtype: The dtype the model computes in, through autocast (default: bf16 on GPUs that have it, fp16 on
            other GPUs, fp32 on the CPU); the weights stay as they were loaded.
        max_duration: Window length (s) for long audio; default: the model's `max_duration`, else 30 s.
    """

    def __init__(
        self,
        model: AudioTextForSequenceClassification,
        processor: AudioTextProcessor,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        max_duration: float | None = None,
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or _default_dtype(self.device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.window = model_window(model.config, max_duration)

    @classmethod
    def from_pretrained(
        cls,
        model_name_or_path: str | os.PathLike,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        max_duration: float | None = None,
        **hub_kwargs,
    ) -> AudioTextClassifier:
        """Load a folder written by `mmclassify train` / `save_pretrained`, or a model pushed to the Hub.

        `hub_kwargs` (`revision=`, `token=`, `cache_dir=`, ...) go to `from_pretrained`; remote code is never run.
        Fails clearly on a folder that is not an mmclassify model.
        """
        folder = Path(model_name_or_path)
        if folder.is_dir():
            config_file = folder / "config.json"
            model_type = json.loads(config_file.read_text()).get("model_type") if config_file.is_file() else None
            if model_type != AudioTextConfig.model_type:
                raise ValueError(
                    f"{folder} is not an mmclassify model folder (expected a config.json with model_type "
                    f"{AudioTextConfig.model_type!r}, found {model_type!r})"
                )
        elif folder.is_absolute() or str(model_name_or_path).startswith(".") or len(folder.parts) > 2:
            # Not a Hub id (org/name) either: transformers would say it cannot find such a Hub repository.
            raise FileNotFoundError(f"{model_name_or_path}: no such model folder")
        model = AudioTextForSequenceClassification.from_pretrained(model_name_or_path, **hub_kwargs)
        processor = AudioTextProcessor.from_pretrained(model_name_or_path, **hub_kwargs)
        return cls(model, processor, device=device, dtype=dtype, max_duration=max_duration)

    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def require_labels(self, labels: Sequence[str]) -> None:
        """Raise a `ValueError` unless the model was trained for exactly these classes (in any order)."""
        if set(labels) != set(self.labels):
            raise ValueError(
                f"the model was trained for the labels {self.labels}, not {list(labels)} "
                f"(missing from the model: {sorted(set(labels) - set(self.labels))}; "
                f"not asked for: {sorted(set(self.labels) - set(labels))})"
            )

    def __call__(
        self,
        audio: AudioInput | list[AudioInput] | Dataset | None = None,
        text: str | list[str | None] | None = None,
        sampling_rate: int | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Classify one pair (returns a dict), lists of pairs or a `datasets.Dataset` (returns a list of dicts).

        Each result has the `label`, its probability `score`, the probability of every class in `scores`, and
        `modalities`: what the answer rests on (`"audio+text"`, `"audio"` or `"text"`). Either modality may be
        None, for a pair or for one pair of a list. A `Dataset` is passed as `audio`, with `audio` and `text`
        columns (other names: `predict`). Raises on the first pair that cannot be used (missing or undecodable
        audio, ...); `predict` reports such pairs instead.
        """
        from datasets import Dataset

        if isinstance(audio, Dataset):
            return self.predict(audio, batch_size=batch_size, num_workers=num_workers, errors="raise")
        single = not isinstance(audio, (list, tuple)) and not isinstance(text, (list, tuple))
        if single:
            rows = [{"audio": audio, "text": text}]
        else:
            count = len(audio) if isinstance(audio, (list, tuple)) else len(text)
            audios = list(audio) if isinstance(audio, (list, tuple)) else [audio] * count
            texts = list(text) if isinstance(text, (list, tuple)) else [text] * count
            if len(audios) != len(texts):
                raise ValueError(f"Got {len(audios)} audio inputs but {len(texts)} texts.")
            rows = [{"audio": a, "text": t} for a, t in zip(audios, texts, strict=True)]
        for row in rows:
            row["sampling_rate"] = sampling_rate
        results = self.predict(rows, batch_size=batch_size, num_workers=num_workers, errors="raise")
        return results[0] if single else results

    def predict(
        self,
        rows: Sequence[dict],
        batch_size: int = 8,
        num_workers: int = 0,
        max_audio_duration: float | None = None,
        max_batch_duration: float | None = None,
        errors: str = "report",
        audio_column: str = "audio",
        text_column: str = "text",
        progress: bool = False,
    ) -> list[dict[str, Any]]:
        """Classify many rows: dicts with `audio` and `text` (either may be missing), or a `datasets.Dataset`.

        `num_workers` DataLoader workers decode the audio while the model runs; within pools of
        `4 x batch_size` clips, batches are made of clips of similar length, at most `batch_size` of them and at
        most `max_batch_duration` seconds of padded audio (default: one window), which bounds the memory a forward
        pass takes. Audio longer than the window is classified window by window, its probabilities averaged.
        With `errors="report"`, a row that cannot be
        used (missing, corrupt or empty audio; audio over `max_audio_duration` seconds; nothing to classify) gets
        `{"error": reason}` in place of a prediction and the other rows are still classified; `errors="raise"`
        raises instead. Results come in the order of the rows.
        """
        if errors not in ("report", "raise"):
            raise ValueError(f"errors must be 'report' or 'raise', got {errors!r}")
        rows = _undecoded(rows, audio_column)
        decoded = _DecodedRows(
            rows,
            self.model.config,
            self.processor.sampling_rate,
            self.window,
            max_audio_duration,
            audio_column,
            text_column,
        )
        pool_size = POOL_BATCHES * batch_size
        max_batch_samples = round((max_batch_duration or self.window) * self.processor.sampling_rate)
        loader = DataLoader(
            decoded,
            batch_size=None,
            num_workers=num_workers,
            collate_fn=_as_is,  # the default would turn the waveforms into tensors
            # Enough decoded ahead to fill the next pool while the model works through this one.
            prefetch_factor=math.ceil(pool_size / num_workers) if num_workers else None,
        )
        results: list[dict[str, Any] | None] = [None] * len(rows)
        window_sums: dict[int, torch.Tensor] = {}
        window_counts: dict[int, int] = {}
        pool: list[dict] = []
        with tqdm(total=len(rows), unit="row", desc="predicting", disable=not progress) as bar:

            def classify_pool() -> None:
                for batch in length_sorted_batches(pool, batch_size, max_batch_samples):
                    for item, probabilities in zip(batch, self._probabilities(batch), strict=True):
                        index = item["index"]
                        window_sums[index] = window_sums.get(index, 0) + probabilities
                        window_counts[index] = window_counts.get(index, 0) + 1
                        if window_counts[index] == item["windows"]:
                            results[index] = self._result(window_sums.pop(index) / window_counts.pop(index), item)
                            bar.update()
                pool.clear()

            for item in loader:
                if "error" in item:
                    if errors == "raise":
                        raise item["error"]
                    results[item["index"]] = {"error": str(item["error"])}
                    bar.update()
                    continue
                pool.append(item)
                if len(pool) >= pool_size:
                    classify_pool()
            classify_pool()
        return results

    def explain(self, audio: AudioInput, text: str, sampling_rate: int | None = None) -> Explanation:
        """What the prediction for one pair looked at: the weight the text paid to each moment of the audio, the
        weight the audio paid to each token, and the class probabilities (`mmclassify.explaining.explain`).

        In fp32, in this classifier's windows: its probabilities are those `clf(audio, text)` gives."""
        return explain(self.model, self.processor, audio, text, sampling_rate=sampling_rate, window=self.window)

    def _probabilities(self, batch: list[dict]) -> torch.Tensor:
        config, rate = self.model.config, self.processor.sampling_rate
        audio = text = None
        if config.uses_audio:  # None: no audio, which the processor gives as training's modality dropout did
            audio = [None if item["waveform"] is None else {"array": item["waveform"], "sampling_rate": rate}
                     for item in batch]  # fmt: skip
        if config.uses_text:
            text = [item["text"] for item in batch]
        inputs = self.processor(audio=audio, text=text).to(self.device)
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)
        with torch.inference_mode(), autocast:
            logits = self.model(**inputs).logits
        return logits.float().softmax(-1).cpu()

    def _result(self, probabilities: torch.Tensor, item: dict) -> dict[str, Any]:
        best = int(probabilities.argmax())
        used = [name for name, present in (("audio", item["has_audio"]), ("text", item["text"] is not None)) if present]
        return {
            "label": self.labels[best],
            "score": float(probabilities[best]),
            "scores": {label: float(p) for label, p in zip(self.labels, probabilities, strict=True)},
            "modalities": "+".join(used),
        }


def length_sorted_batches(items: list[dict], batch_size: int, max_samples: int) -> Iterator[list[dict]]:
    """`items` sorted by length, cut into batches of at most `batch_size` items and `max_samples` padded samples
    (a batch is padded to its longest clip; a single clip longer than that still makes a batch of its own)."""
    batch: list[dict] = []
    for item in sorted(items, key=lambda item: 0 if item["waveform"] is None else len(item["waveform"])):
        length = 0 if item["waveform"] is None else len(item["waveform"])
        if batch and (len(batch) == batch_size or (len(batch) + 1) * length > max_samples):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _as_is(item: dict) -> dict:
    return item


def _undecoded(rows: Sequence[dict], audio_column: str) -> Sequence[dict]:
    """A `datasets.Dataset` with its audio column left undecoded: the workers decode it, window by window."""
    from datasets import Audio, Dataset

    if isinstance(rows, Dataset) and isinstance(rows.features.get(audio_column), Audio):
        return rows.cast_column(audio_column, Audio(decode=False))
    return rows
