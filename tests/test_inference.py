"""`AudioTextClassifier`: one pair or many, missing modalities, long audio in windows, bad rows, the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from conftest import SAMPLING_RATE, noise, tiny_audio_text_config, tiny_wav2vec2_group_config, tone
from datasets import Audio, Dataset
from transformers import pipeline

from mmclassify import AudioTextForSequenceClassification, AudioTextProcessor
from mmclassify.inference import AudioTextClassifier
from mmclassify.long_audio import window_starts

WINDOW = 0.5  # seconds: the saved model's max_duration, so that a 2-s clip is four windows


def _save(folder: Path, processor: AudioTextProcessor, **settings) -> Path:
    torch.manual_seed(0)
    config = tiny_audio_text_config(id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2}, **settings)
    AudioTextForSequenceClassification(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, processor) -> Path:
    return _save(tmp_path_factory.mktemp("model"), processor, max_duration=WINDOW)


@pytest.fixture(scope="module")
def clf(model_dir) -> AudioTextClassifier:
    return AudioTextClassifier.from_pretrained(model_dir, device="cpu")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Four WAV files of different lengths (0.2-0.45 s, within the window) and pitches."""
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for i, (frequency, seconds) in enumerate([(200, 0.3), (500, 0.45), (900, 0.2), (1500, 0.35)]):
        paths.append(folder / f"clip{i}.wav")
        soundfile.write(paths[-1], tone(frequency, SAMPLING_RATE, seconds) + noise(round(seconds * SAMPLING_RATE), i),
                        SAMPLING_RATE)  # fmt: skip
    return paths


TEXTS = ["kids are talking", "dogs are sitting by the door", "one", "two three four"]


def _probabilities(clf: AudioTextClassifier, audio, text) -> list[float]:
    """The model's own forward on one pair, processed by hand: what every prediction path must agree with."""
    inputs = clf.processor(audio=[audio], text=[text])
    with torch.no_grad():
        return clf.model(**inputs).logits.softmax(-1)[0].tolist()


def test_one_pair_gives_the_label_its_probability_and_every_class(clf, clips):
    result = clf(str(clips[0]), TEXTS[0])
    assert set(result) == {"label", "score", "scores", "modalities"}
    assert list(result["scores"]) == ["a", "b", "c"]
    assert list(result["scores"].values()) == pytest.approx(_probabilities(clf, str(clips[0]), TEXTS[0]), abs=1e-5)
    assert result["label"] == max(result["scores"], key=result["scores"].get)
    assert result["score"] == result["scores"][result["label"]]
    assert result["modalities"] == "audio+text"


def test_many_pairs_in_length_sorted_batches_and_workers_match_one_at_a_time(clf, clips):
    one_by_one = [clf(str(path), text) for path, text in zip(clips, TEXTS, strict=True)]
    batched = clf([str(p) for p in clips], TEXTS, batch_size=3, num_workers=2)
    assert len(batched) == len(clips)
    for single, many in zip(one_by_one, batched, strict=True):  # same order, same numbers despite padding
        assert single["label"] == many["label"]
        assert list(single["scores"].values()) == pytest.approx(list(many["scores"].values()), abs=1e-5)


def test_a_datasets_dataset_is_classified_row_by_row(clf, clips):
    dataset = Dataset.from_dict({"audio": [str(p) for p in clips], "text": TEXTS}).cast_column("audio", Audio())
    results = clf.predict(dataset, batch_size=2)
    assert clf(dataset, batch_size=3) == results
    for path, text, result in zip(clips, TEXTS, results, strict=True):
        assert list(result["scores"].values()) == pytest.approx(_probabilities(clf, str(path), text), abs=1e-5)


def test_arrays_at_another_rate_are_resampled(clf):
    clip = tone(440, 8000, 0.4)
    result = clf(clip, TEXTS[1], sampling_rate=8000)
    expected = _probabilities(clf, {"array": clip, "sampling_rate": 8000}, TEXTS[1])
    assert list(result["scores"].values()) == pytest.approx(expected, abs=1e-5)


# --- missing modality --------------------------------------------------------------------------------------------


def test_without_text_the_model_answers_from_the_audio_as_modality_dropout_trained_it(clf, clips):
    result = clf(str(clips[1]), None)
    assert result["modalities"] == "audio"
    # Training's modality dropout gives a missing text as the empty text.
    assert list(result["scores"].values()) == pytest.approx(_probabilities(clf, str(clips[1]), ""), abs=1e-5)
    assert list(result["scores"].values()) != pytest.approx(_probabilities(clf, str(clips[1]), TEXTS[1]), abs=1e-3)


def test_without_audio_the_model_answers_from_the_text(clf):
    result = clf(None, TEXTS[2])
    assert result["modalities"] == "text"
    silence = {"array": np.zeros(1, np.float32), "sampling_rate": SAMPLING_RATE}  # dropout's silent clip
    assert list(result["scores"].values()) == pytest.approx(_probabilities(clf, silence, TEXTS[2]), abs=1e-5)


def test_a_list_may_lack_a_modality_in_some_pairs(clf, clips):
    results = clf([str(clips[0]), None, str(clips[2])], [TEXTS[0], TEXTS[1], None])
    assert [r["modalities"] for r in results] == ["audio+text", "text", "audio"]


def test_a_single_modality_model_says_it_used_only_its_own(tmp_path, processor, clips):
    clf = AudioTextClassifier.from_pretrained(_save(tmp_path, processor, modalities="audio"), device="cpu")
    assert clf(str(clips[0]), "ignored text")["modalities"] == "audio"
    with pytest.raises(ValueError, match="no audio \\(the model classifies audio only\\)"):
        clf(None, "a text")


def test_a_pair_with_neither_modality_is_refused(clf):
    with pytest.raises(ValueError, match="neither audio nor text"):
        clf(None, None)


# --- long audio ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("duration", "window"), [(0.3, 0.5), (0.5, 0.5), (2.0, 0.5), (2.1, 0.5), (600.0, 30.0)])
def test_windows_cover_the_clip_and_overlap(duration, window):
    starts = window_starts(duration, window)
    assert starts[0] == 0.0
    assert starts[-1] + window == pytest.approx(max(duration, window))  # the last one ends with the clip
    gaps = np.diff(starts)
    assert (gaps > 0).all() and (gaps < window).all()  # every window overlaps the next: no moment is missed


def test_long_audio_is_the_average_of_its_windows(clf):
    clip = tone(300, SAMPLING_RATE, 2.0) + noise(2 * SAMPLING_RATE, 7)
    starts = window_starts(2.0, WINDOW)
    assert len(starts) == 5
    per_window = [
        _probabilities(clf, {"array": clip[round(s * SAMPLING_RATE) :][: round(WINDOW * SAMPLING_RATE)],
                             "sampling_rate": SAMPLING_RATE}, TEXTS[0])
        for s in starts
    ]  # fmt: skip
    result = clf(clip, TEXTS[0], sampling_rate=SAMPLING_RATE)
    assert list(result["scores"].values()) == pytest.approx(np.mean(per_window, axis=0).tolist(), abs=1e-5)
    # ... which is not what the whole clip in one pass gives: the windows are really used.
    whole = _probabilities(clf, {"array": clip, "sampling_rate": SAMPLING_RATE}, TEXTS[0])
    assert list(result["scores"].values()) != pytest.approx(whole, abs=1e-4)


def test_explain_gives_the_probabilities_of_the_classifiers_windows(clf):
    clip = tone(300, SAMPLING_RATE, 2.0) + noise(2 * SAMPLING_RATE, 7)
    explanation = clf.explain(clip, TEXTS[0], sampling_rate=SAMPLING_RATE)
    assert explanation.window_starts == pytest.approx(window_starts(2.0, WINDOW))
    expected = clf(clip, TEXTS[0], sampling_rate=SAMPLING_RATE)["scores"]
    assert dict(zip(explanation.labels, explanation.probabilities, strict=True)) == pytest.approx(expected, abs=1e-5)


def test_the_pipeline_classifies_long_audio_in_the_same_windows(model_dir, clf, clips):
    classify = pipeline("audio-text-classification", model=str(model_dir), device="cpu")
    clip = tone(300, SAMPLING_RATE, 2.0) + noise(2 * SAMPLING_RATE, 7)  # five windows
    expected = clf(clip, TEXTS[0], sampling_rate=SAMPLING_RATE)["scores"]
    answer = classify(clip, text=TEXTS[0], sampling_rate=SAMPLING_RATE)
    assert {a["label"]: a["score"] for a in answer} == pytest.approx(expected, abs=1e-5)
    # Batched with short clips, the windows of the long one still come back together, in order.
    pairs = [{"audio": str(clips[0]), "text": TEXTS[0]}, {"audio": clip, "text": TEXTS[0]}]
    short, long = classify(pairs, batch_size=4, sampling_rate=SAMPLING_RATE)
    assert {a["label"]: a["score"] for a in long} == pytest.approx(expected, abs=1e-5)
    assert {a["label"]: a["score"] for a in short} == pytest.approx(clf(str(clips[0]), TEXTS[0])["scores"], abs=1e-5)


def test_a_long_file_read_window_by_window_matches_the_decoded_clip(clf, tmp_path):
    clip = tone(300, 8000, 3.0) + noise(3 * 8000, 3)
    soundfile.write(tmp_path / "long.wav", clip, 8000)
    from_file = clf(str(tmp_path / "long.wav"), TEXTS[0])
    from_array = clf(clip, TEXTS[0], sampling_rate=8000)
    # Resampled window by window rather than whole: only the windows' edges differ.
    assert list(from_file["scores"].values()) == pytest.approx(list(from_array["scores"].values()), abs=2e-3)


def test_a_model_without_max_duration_uses_30_second_windows(tmp_path, processor):
    clf = AudioTextClassifier.from_pretrained(_save(tmp_path, processor), device="cpu")
    assert clf.window == 30.0
    assert AudioTextClassifier.from_pretrained(tmp_path, device="cpu", max_duration=4.0).window == 4.0


# --- bad rows -----------------------------------------------------------------------------------------------------


@pytest.fixture
def bad_rows(tmp_path, clips) -> list[dict]:
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEthis is not audio")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), SAMPLING_RATE)
    soundfile.write(tmp_path / "long.wav", noise(3 * SAMPLING_RATE), SAMPLING_RATE)
    return [
        {"audio": str(clips[0]), "text": TEXTS[0]},
        {"audio": str(tmp_path / "missing.wav"), "text": TEXTS[0]},
        {"audio": str(tmp_path / "corrupt.wav"), "text": TEXTS[0]},
        {"audio": str(tmp_path / "empty.wav"), "text": TEXTS[0]},
        {"audio": str(tmp_path / "long.wav"), "text": TEXTS[0]},
        {"audio": str(clips[1]), "text": None},
        {"audio": None, "text": None},
    ]


def test_every_good_row_is_classified_and_every_bad_row_says_why(clf, bad_rows, tmp_path):
    results = clf.predict(bad_rows, batch_size=2, num_workers=2, max_audio_duration=2.0)
    assert results[0]["modalities"] == "audio+text" and results[5]["modalities"] == "audio"
    assert results[1] == {"error": f"{tmp_path / 'missing.wav'}: no such audio file"}
    assert results[2]["error"].startswith(f"{tmp_path / 'corrupt.wav'}: could not decode audio")
    assert results[3]["error"].startswith(f"{tmp_path / 'empty.wav'}: the clip has no samples")
    assert results[4] == {"error": f"{tmp_path / 'long.wav'}: 3.0 s of audio, over the limit of 2.0 s"}
    assert results[6] == {"error": "row 6: neither audio nor text"}


def test_calling_the_classifier_raises_on_a_bad_pair(clf, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.wav: no such audio file"):
        clf(str(tmp_path / "missing.wav"), "text")


def test_labels_other_than_the_models_are_refused(clf):
    clf.require_labels(["c", "a", "b"])
    with pytest.raises(ValueError, match=r"trained for the labels \['a', 'b', 'c'\], not \['a', 'b', 'x'\]"):
        clf.require_labels(["a", "b", "x"])


def test_a_folder_that_is_not_a_model_or_a_missing_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is not an mmclassify model folder"):
        AudioTextClassifier.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        AudioTextClassifier.from_pretrained(tmp_path / "nothing" / "here")


# --- device and dtype -------------------------------------------------------------------------------------------


def test_fp32_on_the_cpu_by_default_and_bf16_on_request(model_dir, clips):
    fp32 = AudioTextClassifier.from_pretrained(model_dir, device="cpu")
    assert fp32.dtype == torch.float32 and fp32.model.dtype == torch.float32
    bf16 = AudioTextClassifier.from_pretrained(model_dir, device="cpu", dtype=torch.bfloat16)
    assert bf16.model.dtype == torch.float32  # bf16 through autocast: the weights stay as loaded
    expected = list(fp32(str(clips[0]), TEXTS[0])["scores"].values())
    assert list(bf16(str(clips[0]), TEXTS[0])["scores"].values()) == pytest.approx(expected, abs=0.05)


def test_wav2vec2_family_models_classify_in_windows_too(tmp_path, processor):
    torch.manual_seed(0)
    config = tiny_audio_text_config(tiny_wav2vec2_group_config(), max_duration=0.5)
    AudioTextForSequenceClassification(config).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    clf = AudioTextClassifier.from_pretrained(tmp_path, device="cpu")
    results = clf([noise(SAMPLING_RATE // 4), noise(SAMPLING_RATE * 2)], ["one", "two"], sampling_rate=SAMPLING_RATE)
    assert [sum(r["scores"].values()) for r in results] == pytest.approx([1.0, 1.0])


# --- transformers pipeline ------------------------------------------------------------------------------------------


def test_the_audio_text_classification_pipeline(model_dir, clf, clips):
    classify = pipeline("audio-text-classification", model=str(model_dir), device="cpu")
    answer = classify(str(clips[0]), text=TEXTS[0])
    expected = clf(str(clips[0]), TEXTS[0])["scores"]
    assert [a["label"] for a in answer] == sorted(expected, key=expected.get, reverse=True)
    assert {a["label"]: a["score"] for a in answer} == pytest.approx(expected, abs=1e-5)
    assert classify({"audio": str(clips[0]), "text": None}, top_k=1) == [
        {
            "label": clf(str(clips[0]), None)["label"],
            "score": pytest.approx(clf(str(clips[0]), None)["score"], abs=1e-5),
        }
    ]
    pairs = [{"audio": str(p), "text": t} for p, t in zip(clips, TEXTS, strict=True)]
    many = classify(pairs)
    assert len(many) == len(clips) and all(len(a) == 3 for a in many)
    batched = classify(pairs, batch_size=3)  # padded together: the same answers
    for one, other in zip(many, batched, strict=True):
        assert {a["label"]: a["score"] for a in one} == pytest.approx({a["label"]: a["score"] for a in other}, abs=1e-5)
