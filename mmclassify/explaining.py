"""Explain one prediction by the fusion's cross-attention: where in the clip the text looked, and which tokens the
audio looked at.

`explain` runs a cross-attention model on one clip and its text and returns an `Explanation`: the class
probabilities and, averaged over the fusion blocks and heads, the weight the text paid to each audio frame (on a time
axis in seconds) and the weight the audio paid to each token. A clip longer than the model's window is explained in
the overlapping windows `AudioTextClassifier` classifies it in, one at a time, so the model's memory is bounded by
the window (the decoded clip itself is kept whole, for the figure).

Every cross-attention can also attend to a learned null token ("nothing here", see `mmclassify.modeling.fusion`);
the share that went there is reported for each direction, and is large when the model found little in one modality
that matched the other.

Attention weights show where the fusion looked, not how much each part changed the prediction: read them as a
picture of the model's matching, not as attributions.

`plot_explanation` draws an explanation as one PNG (the spectrogram with the text's weights over time, the tokens
with the audio's weights, the class probabilities). Figures are built as in `mmclassify.reports`: matplotlib's
object-oriented API on an Agg canvas, with no pyplot state. Never prints.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torchaudio

from .data.audio import AudioInput, load_audio
from .long_audio import array_windows, model_window, window_starts
from .reports import new_figure, save_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .modeling import AudioTextForSequenceClassification
    from .processing import AudioTextProcessor

_SPECTROGRAM_RANGE_DB = 80.0  # quieter than this below the clip's loudest bin is drawn as the floor colour
_TITLE_TEXT_CHARS = 80  # the text is cut to this in the title, to fit the figure's width
_MANY_TOKENS = 40  # above this, a smaller font for the token labels
_PREDICTED, _OTHER, _SPECIAL = "tab:orange", "tab:blue", "tab:gray"


@dataclass(eq=False)
class Explanation:
    """The fusion's cross-attention on one clip and its text, with the prediction.

    Every weight is averaged over all fusion blocks and all heads, and covers the clip's frames and the text's tokens
    only (no padding). Tokens include the tokenizer's special tokens ([CLS], [SEP], ...), marked in
    `special_tokens`: the model pools every token, special ones included, so they are part of what it matched.

    Attributes:
        label: The predicted class.
        labels: Every class, in the model's order.
        probabilities: Probability of each class of `labels`.
        text: The text, as given.
        tokens: The text's tokens, as the tokenizer wrote them.
        special_tokens: For each token, whether it is a special token of the tokenizer.
        audio_times: Centre of each audio frame, in seconds from the start of the clip. The frames evenly cover the
            clip as the model saw it (decoded, resampled and, if the processor is set to, trimmed of silence); the
            encoders' own frames overlap a little and may leave the last few samples out, so a time is exact to
            within about one frame's hop (20 ms for wav2vec2-family encoders).
        text_to_audio: For each audio frame, the attention the text's tokens paid to it: the mean over blocks,
            heads and all tokens of each token's attention weight on that frame.
        text_to_audio_null: The share of the tokens' attention that went to the null token instead of any frame
            (same mean); `sum(text_to_audio) + text_to_audio_null == 1` for a clip explained in one window.
        audio_to_text: For each token, the attention the audio frames paid to it: the mean over blocks, heads and
            frames of each frame's attention weight on that token.
        audio_to_text_null: The share of the frames' attention that went to the null token instead of any token;
            `sum(audio_to_text) + audio_to_text_null == 1`.
        duration_s: Length of the clip as the model saw it, in seconds.
        window_starts: Start (s) of each window the clip was explained in; `[0.0]` for a clip within one window.
            With several, each moment's weight in `text_to_audio` is that of the window whose centre is nearest
            (windows overlap), so it is a share of that window's attention; `text_to_audio_null`, the token
            weights and the probabilities are means over the windows (the probabilities then equal
            `AudioTextClassifier`'s). The processor's silence trimming, if set, applies to each window.
        sampling_rate: Rate of `waveform` (the audio encoder's rate).
        waveform: The clip's samples as the model got them (before the feature extractor's normalisation), for
            plotting; not part of `to_dict()`.
    """

    label: str
    labels: list[str]
    probabilities: np.ndarray
    text: str
    tokens: list[str]
    special_tokens: list[bool]
    # One value per frame: hundreds of numbers, left out of the repr.
    audio_times: np.ndarray = dataclasses.field(repr=False)
    text_to_audio: np.ndarray = dataclasses.field(repr=False)
    text_to_audio_null: float
    audio_to_text: np.ndarray
    audio_to_text_null: float
    duration_s: float
    window_starts: list[float]
    sampling_rate: int
    waveform: np.ndarray = dataclasses.field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Every field but the waveform, as JSON-ready values (arrays as lists of floats)."""
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        del values["waveform"]
        return {name: value.tolist() if isinstance(value, np.ndarray) else value for name, value in values.items()}


def _check_explainable(model: AudioTextForSequenceClassification) -> None:
    config = model.config
    if config.fusion != "cross_attention" or config.modalities != "audio+text" or not config.fusion_num_layers:
        raise ValueError(
            "explanations need a model that fuses audio and text by cross-attention (fusion='cross_attention', "
            f"modalities='audio+text', fusion_num_layers >= 1); this model has fusion={config.fusion!r}, "
            f"modalities={config.modalities!r}, fusion_num_layers={config.fusion_num_layers}"
        )


def _mean_attention(attentions: tuple[torch.Tensor, ...], query_mask: torch.Tensor, key_mask: torch.Tensor):
    """Mean over blocks, heads and valid queries of the first example's weights on each valid key (float64)."""
    # [blocks, heads, queries, keys], then the padding of either side dropped
    weights = torch.stack([block[0].detach().to("cpu", torch.float64) for block in attentions])
    return weights[:, :, query_mask][..., key_mask].mean(dim=(0, 1, 2)).numpy()


@dataclass
class _Pass:
    """What one forward pass over one window gives."""

    probabilities: np.ndarray
    token_ids: list[int]
    text_to_audio: np.ndarray
    audio_to_text: np.ndarray
    duration_s: float


def _attend(
    model: AudioTextForSequenceClassification, processor: AudioTextProcessor, clip: np.ndarray, text: str
) -> _Pass:
    """Run the model once on one window of the clip, with its attention weights."""
    inputs = processor(audio=[{"array": clip, "sampling_rate": processor.sampling_rate}], text=[text])
    inputs = inputs.to(model.device)
    inputs["input_values"] = inputs["input_values"].to(model.dtype)
    with torch.inference_mode():
        outputs = model(**inputs, output_attentions=True)
    frame_mask = outputs.audio_frame_mask[0].cpu()
    token_mask = inputs["text_attention_mask"][0].bool().cpu()
    return _Pass(
        probabilities=outputs.logits[0].float().softmax(-1).cpu().numpy().astype(np.float64),
        token_ids=inputs["input_ids"][0].cpu()[token_mask].tolist(),
        text_to_audio=_mean_attention(outputs.text_to_audio_attentions, token_mask, frame_mask),
        audio_to_text=_mean_attention(outputs.audio_to_text_attentions, frame_mask, token_mask),
        # Sample count of the clip the model saw (the processor pads no single clip, but the mask is what counts).
        duration_s=float(inputs["attention_mask"][0].sum()) / processor.sampling_rate,
    )


def explain(
    model: AudioTextForSequenceClassification,
    processor: AudioTextProcessor,
    audio: AudioInput,
    text: str,
    sampling_rate: int | None = None,
    window: float | None = None,
) -> Explanation:
    """Classify one clip with its text and return the fusion's cross-attention weights with the prediction.

    A clip longer than `window` seconds is explained in the overlapping windows `AudioTextClassifier` classifies it
    in, one forward pass each (see `Explanation.window_starts`).

    Args:
        model: A model with `fusion="cross_attention"` over `modalities="audio+text"`. It runs in eval mode, in
            fp32 and without gradients, on whatever device it is on; a model in training mode is put back
            afterwards.
        processor: The model's processor.
        audio: One clip: a file path, an array or tensor (with `sampling_rate`), a `{"array", "sampling_rate"}` dict
            or a 🤗 datasets `Audio` value.
        text: The text that goes with the clip.
        sampling_rate: Rate of a raw array in `audio`.
        window: Window length in seconds; default: the model's `max_duration`, else 30 s.

    Raises:
        ValueError: The model has no cross-attention between audio and text, or `text` or `audio` is missing or not a
            single one. Audio that cannot be read raises what `mmclassify.data.audio.load_audio` raises, naming it.
    """
    _check_explainable(model)
    if text is None or audio is None:
        raise ValueError("explanations need both the audio and the text that goes with it: pass `audio` and `text`")
    if not isinstance(text, str) or isinstance(audio, (list, tuple)):
        raise ValueError("explain one clip with one text at a time: `text` must be a string and `audio` one clip")
    if isinstance(audio, os.PathLike):
        audio = str(audio)
    rate = processor.sampling_rate
    waveform = load_audio(audio, rate, sampling_rate=sampling_rate)  # the processor trims each window it is given
    window = model_window(model.config, window)
    starts = window_starts(len(waveform) / rate, window)
    was_training = model.training
    model.eval()
    try:
        passes = [_attend(model, processor, clip, text) for clip in array_windows(waveform, rate, window, starts)]
    finally:
        model.train(was_training)

    # Each window keeps the moments nearer its centre than any other window's: from the middle of its overlap with
    # the previous window to the middle of its overlap with the next.
    bounds = [0.0, *((start + previous + window) / 2 for previous, start in itertools.pairwise(starts)), math.inf]
    times, weights = [], []
    for start, (low, high), one in zip(starts, itertools.pairwise(bounds), passes, strict=True):
        frame_times = start + (np.arange(len(one.text_to_audio)) + 0.5) * one.duration_s / len(one.text_to_audio)
        kept = (frame_times >= low) & (frame_times < high)
        times.append(frame_times[kept])
        weights.append(one.text_to_audio[kept])
    probabilities = np.mean([one.probabilities for one in passes], axis=0)
    audio_to_text = np.mean([one.audio_to_text for one in passes], axis=0)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    token_ids, special_ids = passes[0].token_ids, set(processor.tokenizer.all_special_ids)
    one_window = len(passes) == 1
    return Explanation(
        label=labels[int(probabilities.argmax())],
        labels=labels,
        probabilities=probabilities,
        text=text,
        tokens=processor.tokenizer.convert_ids_to_tokens(token_ids),
        special_tokens=[token_id in special_ids for token_id in token_ids],
        audio_times=np.concatenate(times),
        text_to_audio=np.concatenate(weights),
        # What a query's weights on the real keys leave of 1 went to the null token (see `CrossAttention`).
        text_to_audio_null=float(np.mean([1.0 - one.text_to_audio.sum() for one in passes])),
        audio_to_text=audio_to_text,
        audio_to_text_null=float(1.0 - audio_to_text.sum()),
        duration_s=passes[0].duration_s if one_window else len(waveform) / rate,
        window_starts=[float(start) for start in starts],
        sampling_rate=rate,
        # For the plot: the samples as the model saw them (one window: trimmed as the processor trims).
        waveform=processor.load_audio({"array": waveform, "sampling_rate": rate}) if one_window else waveform,
    )


def _spectrogram_db(waveform: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Power spectrogram in dB, `[frequencies, frames]`: Hann windows of about 25 ms, hop a quarter of that."""
    n_fft = 1 << max(int(0.025 * sampling_rate) - 1, 1).bit_length()  # 512 at 16 kHz
    padded = np.pad(waveform, (0, max(n_fft - len(waveform), 0)))  # a clip shorter than one window gets one frame
    power = torchaudio.transforms.Spectrogram(n_fft, hop_length=n_fft // 4, center=False)(torch.from_numpy(padded))
    return torchaudio.transforms.AmplitudeToDB("power")(power).numpy()


def explanation_figure(explanation: Explanation) -> Figure:
    """Four panels: the clip's spectrogram; under it, on the same time axis, the text's attention to each frame;
    the tokens with the audio's attention to each; the class probabilities, the predicted class highlighted."""
    e = explanation
    figure = new_figure(10, 8 + 0.25 * len(e.labels))
    spectrum, over_time, tokens, classes = figure.subplots(
        4, 1, gridspec_kw={"height_ratios": [3, 1.6, 2.2, 0.6 + 0.3 * len(e.labels)]}
    )
    best = e.labels.index(e.label)
    text = textwrap.shorten(e.text, _TITLE_TEXT_CHARS, placeholder=" …")
    figure.suptitle(f"prediction: {e.label} ({e.probabilities[best]:.3f})   text: {text!r}", fontsize=11)

    db = _spectrogram_db(e.waveform, e.sampling_rate)
    spectrum.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0.0, e.duration_s, 0.0, e.sampling_rate / 2000),
        vmin=db.max() - _SPECTROGRAM_RANGE_DB,
        vmax=db.max(),
    )
    spectrum.set_ylabel("frequency (kHz)")
    spectrum.tick_params(labelbottom=False)  # the time axis is labelled once, on the panel below
    spectrum.set_title("spectrogram", fontsize=9)

    over_time.sharex(spectrum)
    # One step per frame, over the stretch of the clip it covers (bars alias into stripes at hundreds of frames).
    frame_edges = np.concatenate([[0.0], (e.audio_times[1:] + e.audio_times[:-1]) / 2, [e.duration_s]])
    over_time.stairs(e.text_to_audio, frame_edges, fill=True, color=_OTHER)
    # The level every frame would get if the text spread its attention evenly: frames above it stand out.
    over_time.axhline(e.text_to_audio.mean(), color="black", linestyle=":", linewidth=1)
    over_time.set_xlim(0.0, e.duration_s)
    over_time.set_xlabel("time (s)")
    over_time.set_ylabel("weight")
    over_time.set_title(
        f"text → audio: attention the text paid to each moment (dotted: even spread; "
        f"{e.text_to_audio_null:.0%} went to no frame)",
        fontsize=9,
    )

    positions = range(len(e.tokens))
    tokens.bar(positions, e.audio_to_text, color=[_SPECIAL if s else _OTHER for s in e.special_tokens])
    font = 8 if len(e.tokens) <= _MANY_TOKENS else 5
    tokens.set_xticks(positions, e.tokens, rotation=60 if len(e.tokens) > 10 else 0, fontsize=font)
    tokens.set_ylabel("weight")
    tokens.set_title(
        f"audio → text: attention the audio paid to each token (grey: special tokens; "
        f"{e.audio_to_text_null:.0%} went to no token)",
        fontsize=9,
    )

    rows = range(len(e.labels))
    classes.barh(rows, e.probabilities, color=[_PREDICTED if i == best else _OTHER for i in rows])
    classes.set_yticks(rows, e.labels, fontsize=8)
    classes.invert_yaxis()  # first class on top
    classes.set_xlim(0.0, 1.0)
    for row, probability in zip(rows, e.probabilities, strict=True):
        classes.text(min(probability + 0.01, 0.9), row, f"{probability:.3f}", va="center", fontsize=8)
    classes.set_title("class probabilities", fontsize=9)
    return figure


def plot_explanation(explanation: Explanation, path: str | Path) -> Path:
    """Write `explanation_figure(explanation)` as one PNG at `path`; returns the path."""
    return save_png(explanation_figure(explanation), path)
