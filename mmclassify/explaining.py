"""Explain one prediction by the fusion's cross-attention: where in the clip the text looked, and which tokens the
audio looked at.

`explain` runs a cross-attention model once on one clip and its text and returns an `Explanation`: the class
probabilities and, averaged over the fusion blocks and heads, the weight the text paid to each audio frame (on a time
axis in seconds) and the weight the audio paid to each token. Every cross-attention can also attend to a learned null
token ("nothing here", see `mmclassify.modeling.fusion`); the share that went there is reported for each direction,
and is large when the model found little in one modality that matched the other.

Attention weights show where the fusion looked, not how much each part changed the prediction: read them as a
picture of the model's matching, not as attributions.

`plot_explanation` draws an explanation as one PNG (the spectrogram with the text's weights over time, the tokens
with the audio's weights, the class probabilities). Figures are built as in `mmclassify.reports`: matplotlib's
object-oriented API on an Agg canvas, with no pyplot state. Never prints.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torchaudio

from .data.audio import AudioInput
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
            (same mean); `sum(text_to_audio) + text_to_audio_null == 1`.
        audio_to_text: For each token, the attention the audio frames paid to it: the mean over blocks, heads and
            frames of each frame's attention weight on that token.
        audio_to_text_null: The share of the frames' attention that went to the null token instead of any token;
            `sum(audio_to_text) + audio_to_text_null == 1`.
        duration_s: Length of the clip as the model saw it, in seconds.
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


def explain(
    model: AudioTextForSequenceClassification,
    processor: AudioTextProcessor,
    audio: AudioInput,
    text: str,
    sampling_rate: int | None = None,
) -> Explanation:
    """Classify one clip with its text and return the fusion's cross-attention weights with the prediction.

    The whole clip goes through the model in one pass, where `AudioTextClassifier` classifies long audio in windows:
    for a clip longer than its window the probabilities can differ from the classifier's, and memory grows with the
    clip's length.

    Args:
        model: A model with `fusion="cross_attention"` over `modalities="audio+text"`. It runs once, in eval mode
            and without gradients, on whatever device it is on; a model in training mode is put back afterwards.
        processor: The model's processor.
        audio: One clip: a file path, an array or tensor (with `sampling_rate`), a `{"array", "sampling_rate"}` dict
            or a 🤗 datasets `Audio` value.
        text: The text that goes with the clip.
        sampling_rate: Rate of a raw array in `audio`.

    Raises:
        ValueError: The model has no cross-attention between audio and text, or `text` or `audio` is missing or not a
            single one. Audio that cannot be read raises what `AudioTextProcessor.load_audio` raises, naming it.
    """
    _check_explainable(model)
    if text is None or audio is None:
        raise ValueError("explanations need both the audio and the text that goes with it: pass `audio` and `text`")
    if not isinstance(text, str) or isinstance(audio, (list, tuple)):
        raise ValueError("explain one clip with one text at a time: `text` must be a string and `audio` one clip")
    if isinstance(audio, os.PathLike):
        audio = str(audio)
    # Decoded here once for the plot and once more by the processor: passing the decoded samples to the processor
    # instead would trim their silence a second time, when the processor trims.
    waveform = processor.load_audio(audio, sampling_rate)
    inputs = processor(audio=audio, text=text, sampling_rate=sampling_rate).to(model.device)
    inputs["input_values"] = inputs["input_values"].to(model.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            outputs = model(**inputs, output_attentions=True)
    finally:
        model.train(was_training)

    frame_mask = outputs.audio_frame_mask[0].cpu()
    token_mask = inputs["text_attention_mask"][0].bool().cpu()
    text_to_audio = _mean_attention(outputs.text_to_audio_attentions, token_mask, frame_mask)
    audio_to_text = _mean_attention(outputs.audio_to_text_attentions, frame_mask, token_mask)
    token_ids = inputs["input_ids"][0].cpu()[token_mask].tolist()
    special_ids = set(processor.tokenizer.all_special_ids)
    probabilities = outputs.logits[0].float().softmax(-1).cpu().numpy()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    # Sample count of the clip the model saw (the processor pads no single clip, but the mask is what counts).
    duration_s = float(inputs["attention_mask"][0].sum()) / processor.sampling_rate
    num_frames = len(text_to_audio)
    return Explanation(
        label=labels[int(probabilities.argmax())],
        labels=labels,
        probabilities=probabilities.astype(np.float64),
        text=text,
        tokens=processor.tokenizer.convert_ids_to_tokens(token_ids),
        special_tokens=[token_id in special_ids for token_id in token_ids],
        audio_times=(np.arange(num_frames) + 0.5) * duration_s / num_frames,
        text_to_audio=text_to_audio,
        # What a query's weights on the real keys leave of 1 went to the null token (see `CrossAttention`).
        text_to_audio_null=float(1.0 - text_to_audio.sum()),
        audio_to_text=audio_to_text,
        audio_to_text_null=float(1.0 - audio_to_text.sum()),
        duration_s=duration_s,
        sampling_rate=processor.sampling_rate,
        waveform=np.asarray(waveform, dtype=np.float32),
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
    frame_edges = np.linspace(0.0, e.duration_s, len(e.audio_times) + 1)
    over_time.stairs(e.text_to_audio, frame_edges, fill=True, color=_OTHER)
    # The level every frame would get if the text spread its attention evenly: frames above it stand out.
    over_time.axhline((1.0 - e.text_to_audio_null) / len(e.audio_times), color="black", linestyle=":", linewidth=1)
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
