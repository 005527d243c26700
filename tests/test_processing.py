"""`AudioTextProcessor`: every audio form users hand it, resampling, real recordings, saving, and bad input."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from conftest import noise, tiny_cnn_config, tiny_wav2vec2_group_config, tone
from datasets import Audio, Dataset
from transformers import Wav2Vec2Config

from mmclassify import AudioTextProcessor
from mmclassify.data.audio import AudioError, trim_silence

RATE = 16000
FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"


def peak_frequency(waveform: np.ndarray, sampling_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(waveform))
    return float(np.fft.rfftfreq(len(waveform), 1 / sampling_rate)[spectrum.argmax()])


def clip_values(inputs, index: int = 0) -> np.ndarray:
    """The (unpadded) `input_values` of one clip of a processor output."""
    length = int(inputs["attention_mask"][index].sum())
    return inputs["input_values"][index, :length].numpy()


def write_audio(path: Path, waveform: np.ndarray, sampling_rate: int) -> Path:
    """Write with soundfile when it can encode the format, else with the ffmpeg command; skip if neither can."""
    format_name = path.suffix.lstrip(".").upper()
    if format_name in soundfile.available_formats():
        soundfile.write(path, waveform, sampling_rate)
    elif Path(FFMPEG).is_file():
        command = [FFMPEG, "-loglevel", "error", "-y", "-f", "f32le", "-ar", str(sampling_rate), "-ac", "1"]
        subprocess.run([*command, "-i", "-", str(path)], input=waveform.astype(np.float32).tobytes(), check=True)
    else:
        pytest.skip(f"neither soundfile nor ffmpeg can write {format_name}")
    return path


def read_manifest(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


# --- output and model input -----------------------------------------------------------------------------------


def test_processor_output_feeds_the_model(processor, make_model):
    clips = [noise(4000, seed=1), noise(9000, seed=2)]
    texts = ["kids are talking by the door", "dogs"]
    inputs = processor(audio=clips, text=texts, sampling_rate=RATE, padding=True, return_tensors="pt")

    assert {"input_values", "attention_mask", "input_ids", "text_attention_mask"} <= set(inputs)
    assert inputs["input_values"].shape == inputs["attention_mask"].shape == (2, 9000)
    assert inputs["attention_mask"].sum(-1).tolist() == [4000, 9000]
    assert inputs["text_attention_mask"].sum(-1).tolist() == [8, 3]  # [CLS] + words + [SEP]
    assert inputs["input_ids"][1, :3].tolist() == processor.tokenizer.convert_tokens_to_ids(["[CLS]", "dogs", "[SEP]"])
    # The feature extractor normalises every clip over its own samples.
    for index in range(2):
        values = clip_values(inputs, index)
        assert abs(values.mean()) < 1e-3 and abs(values.std() - 1) < 1e-2

    with torch.no_grad():
        logits = make_model(num_labels=4)(**inputs).logits
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()


def test_audio_only_and_text_only_calls(processor):
    audio_only = processor(audio=noise(2000), sampling_rate=RATE)
    text_only = processor(text="kids are talking")
    assert set(audio_only) == {"input_values", "attention_mask"}
    assert "input_values" not in text_only and text_only["input_ids"].shape == (1, 5)
    with pytest.raises(ValueError, match="Pass `audio`, `text` or both"):
        processor()


# --- every form of audio input --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_audio_files_of_each_format_decode_and_resample(processor, tmp_path, suffix):
    source_rate = 8000
    path = write_audio(tmp_path / f"tone{suffix}", tone(440, source_rate), source_rate)

    for audio in (str(path), path):  # str and pathlib.Path
        waveform = clip_values(processor(audio=[audio]))
        lossless = suffix in (".wav", ".flac")
        # Lossy codecs pad with a few encoder frames; lossless ones give back exactly 1 s.
        assert len(waveform) == RATE if lossless else abs(len(waveform) - RATE) < 0.05 * RATE
        assert abs(peak_frequency(waveform, RATE) - 440) <= 2


@pytest.mark.parametrize("source_rate", [8000, 22050, 48000])
def test_resampling_keeps_duration_and_pitch(processor, source_rate):
    waveform = processor.load_audio(tone(440, source_rate, seconds=1.0), sampling_rate=source_rate)
    assert waveform.dtype == np.float32
    assert len(waveform) == RATE
    assert abs(peak_frequency(waveform, RATE) - 440) <= 1
    assert abs(np.abs(waveform[100:-100]).max() - 0.5) < 0.02  # amplitude survives resampling


def test_array_tensor_dict_and_file_inputs_give_the_same_values(processor, tmp_path):
    waveform = tone(300, RATE, seconds=0.5) + noise(RATE // 2)
    path = tmp_path / "clip.wav"
    soundfile.write(path, waveform, RATE, subtype="FLOAT")

    from_array = clip_values(processor(audio=[waveform], sampling_rate=RATE))
    variants = {
        "tensor": processor(audio=[torch.from_numpy(waveform)], sampling_rate=RATE),
        "float64 array": processor(audio=[waveform.astype(np.float64)], sampling_rate=RATE),
        "dict": processor(audio=[{"array": waveform, "sampling_rate": RATE}]),
        "path": processor(audio=[str(path)]),
    }
    for name, inputs in variants.items():
        np.testing.assert_allclose(clip_values(inputs), from_array, atol=1e-5, err_msg=name)


def test_datasets_audio_values(processor, tmp_path):
    path = write_audio(tmp_path / "tone.wav", tone(440, 8000), 8000)
    dataset = Dataset.from_dict({"audio": [str(path)]}).cast_column("audio", Audio())
    value = dataset[0]["audio"]

    from_dataset = clip_values(processor(audio=[value]))
    from_path = clip_values(processor(audio=[str(path)]))
    np.testing.assert_allclose(from_dataset, from_path, atol=1e-6)
    assert len(from_dataset) == RATE


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_multichannel_arrays_are_down_mixed(processor, layout):
    left, right = tone(440, RATE, seconds=0.5), noise(RATE // 2, seed=5)
    stereo = np.stack([left, right]) if layout == "channels_first" else np.stack([left, right], axis=1)

    mixed = processor.load_audio(stereo, sampling_rate=RATE)
    np.testing.assert_allclose(mixed, (left + right) / 2, atol=1e-6)
    batch = processor(audio=[stereo, left], sampling_rate=RATE)
    assert batch["attention_mask"].sum(-1).tolist() == [RATE // 2, RATE // 2]


def test_multichannel_file_is_down_mixed(processor, tmp_path):
    left, right = tone(440, RATE, seconds=0.5), tone(1000, RATE, seconds=0.5)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), RATE, subtype="FLOAT")
    np.testing.assert_allclose(processor.load_audio(str(path)), (left + right) / 2, atol=1e-6)


# --- real recordings (../shared/data) -------------------------------------------------------------------------


def real_clips(folder: Path, manifest: str, count: int) -> list[tuple[Path, str]]:
    rows = read_manifest(folder / manifest)
    step = max(1, len(rows) // count)
    return [(folder / row["path"], row["transcript"]) for row in rows[::step][:count]]


@pytest.mark.parametrize(
    ("subset", "manifest", "source_rate"),
    [
        ("ravdess", "manifest_original_48k.csv", 48000),
        ("ravdess", "manifest.csv", 16000),
        ("fsdd", "manifest.csv", 8000),
    ],
    ids=["ravdess-48k-wav", "ravdess-16k-flac", "fsdd-8k-wav"],
)
def test_real_recordings_go_through_processor_and_model(
    processor, make_model, shared_data, subset, manifest, source_rate
):
    clips = real_clips(shared_data / subset, manifest, count=3)
    paths, texts = [str(path) for path, _ in clips], [text for _, text in clips]
    for path in paths:
        assert soundfile.info(path).samplerate == source_rate

    inputs = processor(audio=paths, text=texts)
    expected_lengths = [int(np.ceil(soundfile.info(path).frames * RATE / source_rate)) for path in paths]
    assert inputs["attention_mask"].sum(-1).tolist() == expected_lengths
    assert torch.isfinite(inputs["input_values"]).all()

    for audio_config in (tiny_cnn_config(), tiny_wav2vec2_group_config()):
        with torch.no_grad():
            out = make_model(audio_config, num_labels=8)(**inputs)
        assert out.logits.shape == (3, 8) and torch.isfinite(out.logits).all()
        assert out.audio_frame_mask.sum(-1).min() > 0


def test_48k_original_resampled_matches_the_16k_copy(processor, shared_data):
    """Our 48 kHz -> 16 kHz resampling reproduces the corpus' own 16 kHz FLAC of the same recording."""
    ravdess = shared_data / "ravdess"
    original = Path(read_manifest(ravdess / "manifest_original_48k.csv")[0]["path"])
    copy_16k = next(
        ravdess / row["path"]
        for row in read_manifest(ravdess / "manifest.csv")
        if Path(row["path"]).stem == original.stem
    )

    resampled = processor.load_audio(str(ravdess / original))
    reference, reference_rate = soundfile.read(copy_16k, dtype="float32")
    assert reference_rate == RATE
    length = min(len(resampled), len(reference))
    assert abs(len(resampled) - len(reference)) <= 1
    assert np.corrcoef(resampled[:length], reference[:length])[0, 1] > 0.999


# --- saving and loading ---------------------------------------------------------------------------------------


def test_processor_save_and_load_round_trip(processor, tmp_path):
    processor.save_pretrained(tmp_path)
    reloaded = AudioTextProcessor.from_pretrained(tmp_path)

    assert reloaded.sampling_rate == RATE
    assert reloaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    clips, texts = [noise(3000, seed=1), noise(5000, seed=2)], ["kids are", "zero one two"]
    expected = processor(audio=clips, text=texts, sampling_rate=RATE)
    actual = reloaded(audio=clips, text=texts, sampling_rate=RATE)
    assert set(actual) == set(expected)
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)


# --- bad input: every error names the input and says what is wrong -------------------------------------------


def test_missing_file_names_the_path(processor, tmp_path):
    missing = tmp_path / "nowhere" / "missing.wav"
    with pytest.raises(FileNotFoundError, match="missing.wav: no such audio file"):
        processor(audio=[str(missing)])


def test_corrupt_file_names_the_path(processor, tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioError, match=r"corrupt\.wav: could not decode audio") as error:
        processor(audio=[str(corrupt)])
    assert isinstance(error.value, ValueError)


def test_zero_sample_file_names_the_path(processor, tmp_path):
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), RATE)
    with pytest.raises(AudioError, match=r"empty\.wav: the clip has no samples"):
        processor(audio=[str(empty)])


@pytest.mark.parametrize(
    ("bad_clip", "message"),
    [
        (np.zeros(0, dtype=np.float32), "audio\\[1\\]: the clip has no samples"),
        (np.array([0.1, np.nan, 0.2] * 200, dtype=np.float32), "audio\\[1\\]: the clip contains NaN"),
        (np.array([0.1, np.inf, 0.2] * 200, dtype=np.float32), "audio\\[1\\]: the clip contains NaN or infinite"),
        (np.zeros((2, 3, 400), dtype=np.float32), "audio\\[1\\]: expected a 1-D or 2-D .* got shape \\(2, 3, 400\\)"),
        ({"sampling_rate": RATE}, "audio\\[1\\]: an audio dict needs an 'array'"),
        (12345, "audio\\[1\\]: unsupported audio input of type int"),
    ],
    ids=["zero-samples", "nan", "inf", "3-d", "dict-without-array", "int"],
)
def test_bad_clip_errors_name_the_clip(processor, bad_clip, message):
    with pytest.raises(AudioError, match=message):
        processor(audio=[noise(1000), bad_clip], sampling_rate=RATE)


def test_raw_array_without_sampling_rate_is_refused(processor):
    with pytest.raises(AudioError, match="audio\\[0\\]: pass `sampling_rate`"):
        processor(audio=[noise(1000)])
    with pytest.raises(AudioError, match="audio\\[0\\]: pass `sampling_rate`"):
        processor(audio=[{"array": noise(1000)}])


# --- edge cases that are valid --------------------------------------------------------------------------------


@pytest.mark.parametrize("audio_config", [tiny_cnn_config, tiny_wav2vec2_group_config], ids=["cnn", "wav2vec2"])
def test_silent_clip_and_empty_text_give_finite_logits(processor, make_model, audio_config):
    inputs = processor(audio=[np.zeros(RATE, dtype=np.float32), noise(RATE)], text=["", "kids"], sampling_rate=RATE)
    assert (inputs["input_values"][0] == 0).all()
    assert inputs["text_attention_mask"][0].sum() == 2  # [CLS] [SEP]
    with torch.no_grad():
        logits = make_model(audio_config())(**inputs).logits
    assert torch.isfinite(logits).all()


def wav2vec2_base_front_end_config() -> Wav2Vec2Config:
    """Tiny widths but wav2vec2-base's real front-end (20 ms hop, 25 ms receptive field)."""
    return Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=32,
    )


@pytest.mark.parametrize("num_samples", [1, 80, 399])
@pytest.mark.parametrize(
    "audio_config", [tiny_cnn_config, wav2vec2_base_front_end_config], ids=["cnn", "wav2vec2-base-front-end"]
)
def test_clips_shorter_than_25_ms_still_get_a_prediction(processor, make_model, num_samples, audio_config):
    inputs = processor(audio=[noise(num_samples)], text=["zero"], sampling_rate=RATE)
    assert inputs["input_values"].shape == (1, 400)  # extended with silence to 25 ms
    with torch.no_grad():
        out = make_model(audio_config())(**inputs)
    assert out.audio_frame_mask.sum() >= 1
    assert torch.isfinite(out.logits).all()


# --- silence trimming -----------------------------------------------------------------------------------------


def padded_with_silence(lead: float, trail: float, floor: float = 1e-4) -> np.ndarray:
    """0.3 s of tone between `lead` and `trail` seconds of faint noise (`floor` amplitude, about -70 dB)."""
    rng = np.random.default_rng(0)
    parts = [
        floor * rng.standard_normal(int(lead * RATE)),
        tone(440.0, RATE, 0.3),
        floor * rng.standard_normal(int(trail * RATE)),
    ]
    return np.concatenate(parts).astype(np.float32)


def test_trim_silence_cuts_leading_and_trailing_quiet_and_keeps_the_sound():
    clip = padded_with_silence(0.2, 0.3)
    trimmed = trim_silence(clip, RATE, top_db=30)
    # The 0.3 s of sound and at most 20 ms (+ one 10 ms frame of rounding) on either side.
    assert 0.3 * RATE <= len(trimmed) <= (0.3 + 2 * 0.03) * RATE
    loud = np.abs(clip) > 0.01  # the tone's samples (the noise stays below 0.001)
    assert (np.abs(trimmed) > 0.01).sum() == loud.sum()  # every sample of the sound is kept


def test_trim_silence_keeps_quiet_gaps_inside_and_silent_or_tiny_clips_whole():
    gap = np.concatenate([padded_with_silence(0.0, 0.2), padded_with_silence(0.0, 0.0)])
    assert len(trim_silence(gap, RATE, top_db=30)) >= 0.8 * RATE - 0.03 * RATE  # the inner 0.2 s stay
    silent = np.zeros(RATE, np.float32)
    assert len(trim_silence(silent, RATE, top_db=30)) == RATE
    assert len(trim_silence(np.ones(100, np.float32), RATE, top_db=30)) == 100


def test_processor_trims_when_asked_and_saves_the_setting(processor, tmp_path):
    clip = padded_with_silence(0.2, 0.3)
    trimming = AudioTextProcessor(processor.feature_extractor, processor.tokenizer, trim_silence_db=30.0)
    assert int(processor(audio=clip, sampling_rate=RATE)["attention_mask"].sum()) == len(clip)
    trimmed_length = int(trimming(audio=clip, sampling_rate=RATE)["attention_mask"].sum())
    assert trimmed_length == len(trim_silence(clip, RATE, 30.0)) < 0.4 * RATE
    trimming.save_pretrained(tmp_path)
    reloaded = AudioTextProcessor.from_pretrained(tmp_path)
    assert reloaded.trim_silence_db == 30.0
    assert int(reloaded(audio=clip, sampling_rate=RATE)["attention_mask"].sum()) == trimmed_length
