"""Explanations of one prediction: the fusion's cross-attention as numbers, a PNG, a JSON file and a CLI command."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest
import torch
from conftest import SAMPLING_RATE, noise, tiny_audio_text_config, tiny_cnn_config, tiny_wav2vec2_group_config
from matplotlib.image import imread
from matplotlib.patches import Rectangle, StepPatch
from mmclassify_cli.main import app
from tiny_recipes import write_wav
from typer.testing import CliRunner

from mmclassify import AudioTextForSequenceClassification, AudioTextProcessor
from mmclassify.explaining import explain, explanation_figure, plot_explanation
from mmclassify.inference import AudioTextClassifier
from mmclassify.long_audio import window_starts

PNG = b"\x89PNG\r\n\x1a\n"
TEXT = "kids are talking by the door"
TOKENS = ["[CLS]", "kids", "are", "talking", "by", "the", "door", "[SEP]"]
# Silence, then noise: the frames differ, so uniform weights would not pass for the model's.
CLIP = np.concatenate([np.zeros(2400, np.float32), noise(5600, seed=3)])
LABELS = {0: "calm", 1: "angry", 2: "happy"}
TOLERANCE = 1e-5  # float32 attention, recomputed in another order
ENCODERS = {"spectrogram-cnn": tiny_cnn_config, "wav2vec2": tiny_wav2vec2_group_config}


@pytest.fixture(params=list(ENCODERS))
def model(request, make_model) -> AudioTextForSequenceClassification:
    """A tiny two-block, two-head cross-attention model on each encoder kind."""
    return make_model(ENCODERS[request.param](), id2label=LABELS)


def frame_count(model: AudioTextForSequenceClassification, samples: int) -> int:
    return int(model.audio_encoder._get_feat_extract_output_lengths(torch.tensor(samples)))


# --- the numbers ---------------------------------------------------------------------------------------------------


def test_one_weight_per_frame_and_per_token_and_the_prediction(model, processor):
    e = explain(model, processor, CLIP, TEXT, sampling_rate=SAMPLING_RATE)

    frames = frame_count(model, len(CLIP))
    assert len(e.audio_times) == len(e.text_to_audio) == frames
    assert e.tokens == TOKENS
    assert e.special_tokens == [True] + [False] * 6 + [True]
    assert len(e.audio_to_text) == len(TOKENS)
    assert (e.text_to_audio > 0).all() and (e.audio_to_text > 0).all()
    assert 0 < e.text_to_audio_null < 1 and 0 < e.audio_to_text_null < 1
    with torch.no_grad():
        logits = model(**processor(audio=CLIP, text=TEXT, sampling_rate=SAMPLING_RATE)).logits[0]
    np.testing.assert_allclose(e.probabilities, logits.softmax(-1).numpy(), atol=1e-6)
    assert e.labels == ["calm", "angry", "happy"]
    assert e.label == e.labels[int(logits.argmax())]
    assert e.text == TEXT


def recomputed_attention(attention, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """One example's softmax(q·k / sqrt(d)) per head `[heads, queries, 1 + keys]`, the null key first."""
    heads, width = attention.num_heads, attention.head_dim
    keys = torch.cat([attention.null_token[None], keys])
    q = attention.q_proj(queries).view(len(queries), heads, width).transpose(0, 1)
    k = attention.k_proj(keys).view(len(keys), heads, width).transpose(0, 1)
    return (q @ k.transpose(-1, -2) / width**0.5).softmax(dim=-1)


def test_the_weights_are_the_models_attention_recomputed_from_its_projections(model, processor):
    # The inputs each cross-attention gets during `explain`; the weights are then recomputed from the layer's own
    # projections and null token, independently of the attention code and of `explain`'s averaging.
    captured = {"audio_to_text": [], "text_to_audio": []}
    hooks = [
        getattr(block, name).register_forward_hook(lambda _m, args, _out, name=name: captured[name].append(args[:2]))
        for block in model.fusion_blocks
        for name in captured
    ]
    try:
        e = explain(model, processor, CLIP, TEXT, sampling_rate=SAMPLING_RATE)
    finally:
        for hook in hooks:
            hook.remove()

    for name, weights, null in [
        ("text_to_audio", e.text_to_audio, e.text_to_audio_null),
        ("audio_to_text", e.audio_to_text, e.audio_to_text_null),
    ]:
        with torch.no_grad():
            per_block = [
                recomputed_attention(getattr(block, name), queries[0], keys[0])
                for block, (queries, keys) in zip(model.fusion_blocks, captured[name], strict=True)
            ]
        # [blocks, heads, queries, 1 + keys] -> mean over blocks, heads and queries
        expected = torch.stack(per_block).mean(dim=(0, 1, 2)).double().numpy()
        assert len(per_block) == 2 and per_block[0].shape[0] == 2  # two blocks, two heads averaged
        np.testing.assert_allclose(weights, expected[1:], atol=TOLERANCE, err_msg=name)
        assert null == pytest.approx(expected[0], abs=TOLERANCE), name
        # Spread well beyond the tolerance: even weights (or another clip's) would not pass for these.
        assert np.ptp(weights) > 10 * TOLERANCE, name


def test_a_clips_explanation_does_not_depend_on_other_clips(make_model, processor):
    # The same clip padded in a batch with a longer clip and a longer text: its weights over its own frames and
    # tokens, averaged here from the model's attention tensors, are the explanation's.
    model = make_model(tiny_wav2vec2_group_config(), fusion_num_attention_heads=4)
    short_text, long_text = "kids are", "dogs are sitting by the door"
    e = explain(model, processor, CLIP, short_text, sampling_rate=SAMPLING_RATE)
    inputs = processor(audio=[CLIP, noise(12000, seed=4)], text=[short_text, long_text], sampling_rate=SAMPLING_RATE)
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
    frames, tokens = out.audio_frame_mask[0], inputs["text_attention_mask"][0].bool()
    assert not frames.all() and not tokens.all()  # the clip and its text are padded in this batch

    text_to_audio = torch.stack([w[0][:, tokens][:, :, frames] for w in out.text_to_audio_attentions])
    audio_to_text = torch.stack([w[0][:, frames][:, :, tokens] for w in out.audio_to_text_attentions])
    np.testing.assert_allclose(e.text_to_audio, text_to_audio.mean(dim=(0, 1, 2)).numpy(), atol=TOLERANCE)
    np.testing.assert_allclose(e.audio_to_text, audio_to_text.mean(dim=(0, 1, 2)).numpy(), atol=TOLERANCE)
    np.testing.assert_allclose(e.probabilities, out.logits[0].softmax(-1).numpy(), atol=TOLERANCE)


@pytest.mark.parametrize("rate", [8000, SAMPLING_RATE])
def test_the_time_axis_spans_the_clip_in_seconds(model, processor, rate):
    clip = noise(rate // 2, seed=5)  # half a second at `rate`, resampled to the encoder's 16 kHz
    e = explain(model, processor, clip, TEXT, sampling_rate=rate)

    assert e.duration_s == pytest.approx(0.5, abs=1 / SAMPLING_RATE)
    assert len(e.waveform) / e.sampling_rate == pytest.approx(e.duration_s)
    assert len(e.audio_times) == frame_count(model, round(0.5 * SAMPLING_RATE))
    # Frame centres, evenly spaced: the frames tile the clip from its start to its end.
    spacing = e.duration_s / len(e.audio_times)
    np.testing.assert_allclose(np.diff(e.audio_times), spacing)
    assert e.audio_times[0] == pytest.approx(spacing / 2)
    assert e.audio_times[-1] == pytest.approx(e.duration_s - spacing / 2)


def test_the_time_axis_is_that_of_the_trimmed_clip_the_model_saw(make_model, processor):
    trimming = AudioTextProcessor(processor.feature_extractor, processor.tokenizer, trim_silence_db=30.0)
    silence = np.zeros(4800, np.float32)  # 0.3 s on each side of 0.2 s of noise
    e = explain(make_model(), trimming, np.concatenate([silence, noise(3200), silence]), TEXT, SAMPLING_RATE)

    assert 0.2 <= e.duration_s <= 0.3  # the sound and the 20 ms kept on either side of it
    assert len(e.waveform) / e.sampling_rate == pytest.approx(e.duration_s)
    assert e.audio_times[-1] < e.duration_s


def test_a_clip_longer_than_the_window_is_explained_window_by_window(model, processor):
    clip = np.concatenate([noise(16000, seed=6), np.zeros(8000, np.float32), noise(8000, seed=7)])  # 2 s
    window = 0.5
    e = explain(model, processor, clip, TEXT, sampling_rate=SAMPLING_RATE, window=window)
    starts = window_starts(2.0, window)
    assert e.window_starts == pytest.approx(starts) and len(starts) == 5
    assert e.duration_s == pytest.approx(2.0) and len(e.waveform) == len(clip)
    windows = [
        explain(model, processor, clip[round(start * SAMPLING_RATE) :][: round(window * SAMPLING_RATE)], TEXT,
                sampling_rate=SAMPLING_RATE, window=window)
        for start in starts
    ]  # fmt: skip
    # The prediction and the token weights are the windows' means (the probabilities: AudioTextClassifier's).
    np.testing.assert_allclose(e.probabilities, np.mean([w.probabilities for w in windows], axis=0), atol=1e-6)
    np.testing.assert_allclose(e.audio_to_text, np.mean([w.audio_to_text for w in windows], axis=0), atol=1e-6)
    assert e.text_to_audio_null == pytest.approx(np.mean([w.text_to_audio_null for w in windows]), abs=1e-6)
    # The frames tile the clip in order, each moment taken from the window it is most central in.
    assert (np.diff(e.audio_times) > 0).all() and e.audio_times[0] < 0.05 and e.audio_times[-1] > 1.95
    middles = [(start + previous + window) / 2 for previous, start in itertools.pairwise(starts)]
    tiled = 0
    for start, low, high, one in zip(starts, [0.0, *middles], [*middles, np.inf], windows, strict=True):
        times = start + one.audio_times
        kept = (times >= low) & (times < high)
        here = np.isin(e.audio_times, times[kept])
        assert kept.sum() > 0 and here.sum() == kept.sum()
        np.testing.assert_allclose(e.text_to_audio[here], one.text_to_audio[kept], atol=1e-6)
        tiled += kept.sum()
    assert len(e.audio_times) == tiled


def test_a_file_path_is_explained_like_its_samples(make_model, processor, tmp_path):
    model = make_model()
    wav = write_wav(tmp_path / "clip.wav", 300.0)
    from_file = explain(model, processor, wav, TEXT)  # a Path
    from_samples = explain(model, processor, processor.load_audio(str(wav)), TEXT, sampling_rate=SAMPLING_RATE)
    np.testing.assert_allclose(from_file.text_to_audio, from_samples.text_to_audio, atol=1e-6)
    np.testing.assert_allclose(from_file.probabilities, from_samples.probabilities, atol=1e-6)


def test_a_model_in_training_mode_is_explained_without_dropout_and_put_back(make_model, processor):
    model = make_model(fusion_dropout=0.5)
    expected = explain(model, processor, CLIP, TEXT, sampling_rate=SAMPLING_RATE)
    model.train()
    again = explain(model, processor, CLIP, TEXT, sampling_rate=SAMPLING_RATE)
    assert model.training
    np.testing.assert_array_equal(again.text_to_audio, expected.text_to_audio)


# --- refusals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [{"fusion": "concat"}, {"modalities": "audio"}, {"modalities": "text"}, {"fusion_num_layers": 0}],
    ids=["concat", "audio-only", "text-only", "no-blocks"],
)
def test_a_model_without_cross_attention_is_refused_clearly(make_model, processor, settings):
    with pytest.raises(ValueError, match=r"need a model that fuses audio and text by cross-attention \(fusion="):
        explain(make_model(**settings), processor, CLIP, TEXT, sampling_rate=SAMPLING_RATE)


def test_missing_text_or_several_clips_are_refused(make_model, processor):
    model = make_model()
    with pytest.raises(ValueError, match="both the audio and the text"):
        explain(model, processor, CLIP, None, sampling_rate=SAMPLING_RATE)
    with pytest.raises(ValueError, match="one clip with one text at a time"):
        explain(model, processor, [CLIP, CLIP], [TEXT, TEXT], sampling_rate=SAMPLING_RATE)


# --- PNG and JSON --------------------------------------------------------------------------------------------------


@pytest.fixture
def explanation(make_model, processor):
    return explain(make_model(id2label=LABELS), processor, CLIP, TEXT, sampling_rate=SAMPLING_RATE)


def assert_png(path, min_bytes: int = 20_000) -> None:
    """A PNG by its signature, that matplotlib reads back, of a real size and not one flat colour."""
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > min_bytes
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 600 and image.shape[1] > 800 and image.std() > 0


def bars(axis) -> list[Rectangle]:
    return [patch for patch in axis.patches if isinstance(patch, Rectangle)]


def test_the_figure_draws_the_weights_on_the_clips_time_axis_the_tokens_and_the_probabilities(explanation):
    e = explanation
    spectrum, over_time, tokens, classes = explanation_figure(e).axes

    assert spectrum.images[0].get_extent()[:2] == [0.0, e.duration_s]
    assert over_time.get_xlim() == (0.0, e.duration_s) and over_time.get_xlabel() == "time (s)"
    (steps,) = [patch for patch in over_time.patches if isinstance(patch, StepPatch)]
    values, edges, _ = steps.get_data()
    np.testing.assert_allclose(values, e.text_to_audio)
    np.testing.assert_allclose((edges[:-1] + edges[1:]) / 2, e.audio_times)  # each step centred on its frame
    assert [label.get_text() for label in tokens.get_xticklabels()] == TOKENS
    np.testing.assert_allclose([b.get_height() for b in bars(tokens)], e.audio_to_text)
    assert f"{e.audio_to_text_null:.0%} went to no token" in tokens.get_title()
    assert [label.get_text() for label in classes.get_yticklabels()] == e.labels
    np.testing.assert_allclose([b.get_width() for b in bars(classes)], e.probabilities)
    colours = [b.get_facecolor() for b in bars(classes)]
    predicted = e.labels.index(e.label)
    assert all(colours[i] != colours[predicted] for i in range(len(colours)) if i != predicted)
    assert f"prediction: {e.label} ({e.probabilities[predicted]:.3f})" in explanation_figure(e)._suptitle.get_text()


def test_plot_explanation_writes_a_png(explanation, tmp_path):
    path = plot_explanation(explanation, tmp_path / "explain.png")
    assert path == tmp_path / "explain.png"
    assert_png(path)


def test_the_json_round_trips_with_the_same_numbers(explanation, tmp_path):
    path = tmp_path / "explain.json"
    path.write_text(json.dumps(explanation.to_dict()))
    loaded = json.loads(path.read_text())

    assert "waveform" not in loaded
    assert loaded == explanation.to_dict()
    assert loaded["tokens"] == TOKENS and loaded["label"] == explanation.label
    for name in ("probabilities", "audio_times", "text_to_audio", "audio_to_text"):
        np.testing.assert_array_equal(loaded[name], getattr(explanation, name), err_msg=name)
    assert sum(loaded["text_to_audio"]) + loaded["text_to_audio_null"] == pytest.approx(1.0)


# --- command line --------------------------------------------------------------------------------------------------


def invoke(*args):
    env = {"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1"}
    return CliRunner().invoke(app, [str(a) for a in args], env=env, prog_name="mmclassify")


def save_model(folder, processor, **settings):
    torch.manual_seed(0)
    AudioTextForSequenceClassification(tiny_audio_text_config(id2label=LABELS, **settings)).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, processor):
    return save_model(tmp_path_factory.mktemp("explain") / "model", processor)


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("audio") / "clip.wav", 300.0)


def test_explain_command_writes_the_png_and_the_json_of_the_python_explanation(model_dir, wav, tmp_path):
    png, json_file = tmp_path / "out.png", tmp_path / "out.json"
    result = invoke(
        "explain", model_dir, "--audio", wav, "--text", TEXT, "--output", png, "--json", json_file, "--device", "cpu"
    )
    assert result.exit_code == 0, result.output

    clf = AudioTextClassifier.from_pretrained(model_dir, device="cpu")
    expected = explain(clf.model, clf.processor, str(wav), TEXT)
    written = json.loads(json_file.read_text())
    assert written["label"] == expected.label and written["tokens"] == expected.tokens
    for name in ("probabilities", "audio_times", "text_to_audio", "audio_to_text"):
        np.testing.assert_allclose(written[name], getattr(expected, name), atol=1e-6, err_msg=name)
    assert_png(png)
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(rf"{expected.label} \(\d\.\d{{3}}\)", lines[0])
    assert f"explanation drawn in {png}" in result.stdout and f"weights written to {json_file}" in result.stdout


def test_explain_command_explains_a_long_clip_in_windows_of_max_duration(model_dir, wav, tmp_path):
    json_file = tmp_path / "out.json"
    result = invoke("explain", model_dir, "--audio", wav, "--text", TEXT, "--json", json_file, "--max-duration", 0.1)
    assert result.exit_code == 0, result.output

    clf = AudioTextClassifier.from_pretrained(model_dir, device="cpu", max_duration=0.1)
    written = json.loads(json_file.read_text())
    assert len(written["window_starts"]) > 1
    assert written["probabilities"] == pytest.approx(list(clf(str(wav), TEXT)["scores"].values()), abs=1e-5)


def test_explain_command_draws_explain_png_by_default_and_only_json_when_asked(model_dir, wav, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke("explain", model_dir, "--audio", wav, "--text", TEXT, "--device", "cpu").exit_code == 0
    assert_png(tmp_path / "explain.png")
    (tmp_path / "explain.png").unlink()
    result = invoke("explain", model_dir, "--audio", wav, "--text", TEXT, "--json", "w.json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "w.json").is_file() and not (tmp_path / "explain.png").exists()


def test_explain_command_with_a_missing_audio_file_names_it(model_dir, tmp_path):
    missing = tmp_path / "missing.wav"
    result = invoke("explain", model_dir, "--audio", missing, "--text", TEXT, "--output", tmp_path / "x.png")
    assert result.exit_code == 1
    assert f"error: {missing}: no such audio file" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.png").exists()


def test_explain_command_on_a_concat_model_says_what_it_needs(processor, wav, tmp_path):
    folder = save_model(tmp_path / "concat", processor, fusion="concat")
    result = invoke("explain", folder, "--audio", wav, "--text", TEXT, "--output", tmp_path / "x.png")
    assert result.exit_code == 1
    assert "fuses audio and text by cross-attention" in result.output and "fusion='concat'" in result.output
    assert "Traceback" not in result.output


def test_explain_command_on_a_missing_folder(tmp_path, wav):
    result = invoke("explain", tmp_path / "nothing", "--audio", wav, "--text", TEXT)
    assert result.exit_code == 1
    assert f"{tmp_path / 'nothing'}: no such model folder" in result.output


def test_explain_command_help_lists_every_option():
    result = invoke("explain", "--help")
    assert result.exit_code == 0
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.stdout).split())
    for option in ("--audio", "--text", "--output", "--json", "--device"):
        assert option in text
    assert "JSON file to write the probabilities and attention weights to" in text
