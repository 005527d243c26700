"""`mmclassify predict` on many pairs: CSV / JSON Lines / folder in, predictions out, bad rows reported."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from conftest import SAMPLING_RATE, noise, tiny_audio_text_config
from mmclassify_cli.main import PARTIAL_FAILURE, app
from typer.testing import CliRunner

from mmclassify import AudioTextForSequenceClassification
from mmclassify.inference import AudioTextClassifier

LABELS = ["calm", "angry", "sad"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, processor) -> Path:
    folder = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    config = tiny_audio_text_config(
        id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)}, max_duration=1.0
    )
    AudioTextForSequenceClassification(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A folder of clips, with a CSV listing good and bad rows by relative path."""
    folder = tmp_path_factory.mktemp("data")
    (folder / "clips").mkdir()
    for i, seconds in enumerate([0.3, 0.6, 0.25, 2.5]):
        soundfile.write(folder / "clips" / f"c{i}.wav", noise(round(seconds * SAMPLING_RATE), i), SAMPLING_RATE)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    soundfile.write(folder / "empty.wav", np.zeros(0, np.float32), SAMPLING_RATE)
    rows = [
        ("clips/c0.wav", "kids are talking"),
        ("missing.wav", "dogs are sitting"),
        ("clips/c1.wav", ""),  # no text: classified from the audio alone
        ("corrupt.wav", "one"),
        ("empty.wav", "two"),
        ("clips/c2.wav", "by the door"),
        ("clips/c3.wav", "three"),  # 2.5 s: over --max-audio-duration 2 in the test that sets it
        ("", "the door"),  # no audio: classified from the text alone
    ]
    with (folder / "pairs.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "audio", "text"])
        writer.writerows((f"r{i}", audio, text) for i, (audio, text) in enumerate(rows))
    return folder


def read_csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_a_csv_with_bad_rows_gets_every_row_back_with_a_prediction_or_its_reason(model_dir, data, tmp_path):
    output = tmp_path / "preds.csv"
    args = ("--output", output, "--max-audio-duration", 2, "--num-workers", 2, "--batch-size", 2)
    result = invoke("predict", model_dir, "--input", data / "pairs.csv", *args)
    assert result.exit_code == PARTIAL_FAILURE, result.output
    rows = read_csv(output)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(8)]  # every row, in the input's order
    assert list(rows[0]) == ["id", "audio", "text", "predicted_label", "probability",
                             "prob_calm", "prob_angry", "prob_sad", "modalities", "error"]  # fmt: skip
    errors = {r["id"]: r["error"] for r in rows if r["error"]}
    assert set(errors) == {"r1", "r3", "r4", "r6"}
    assert errors["r1"] == f"{data / 'missing.wav'}: no such audio file"
    assert errors["r3"].startswith(f"{data / 'corrupt.wav'}: could not decode audio")
    assert errors["r4"] == f"{data / 'empty.wav'}: the clip has no samples (no audio frame could be decoded)"
    assert errors["r6"] == f"{data / 'clips' / 'c3.wav'}: 2.5 s of audio, over the limit of 2.0 s"
    good = [r for r in rows if not r["error"]]
    assert [r["modalities"] for r in good] == ["audio+text", "audio", "audio+text", "text"]
    for row in good:
        probabilities = [float(row[f"prob_{label}"]) for label in LABELS]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
        assert row["predicted_label"] == LABELS[int(np.argmax(probabilities))]
        assert float(row["probability"]) == max(probabilities)
    # The printed summary names each bad row; the numbers are the library's.
    assert "4 of 8 rows classified" in result.output and "row 1: " in result.output
    clf = AudioTextClassifier.from_pretrained(model_dir, device="cpu")
    expected = clf(str(data / "clips" / "c0.wav"), "kids are talking")["scores"]
    assert {label: float(rows[0][f"prob_{label}"]) for label in LABELS} == pytest.approx(expected, abs=1e-6)


def test_long_audio_is_classified_in_windows_without_a_limit(model_dir, data, tmp_path):
    output = tmp_path / "preds.jsonl"
    result = invoke("predict", model_dir, "--input", data / "pairs.csv", "--output", output, "--num-workers", 0)
    assert result.exit_code == PARTIAL_FAILURE, result.output
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert rows[6]["error"] is None and rows[6]["modalities"] == "audio+text"  # 2.5 s in 1-s windows
    assert rows[1]["predicted_label"] is None and rows[1]["error"].endswith("no such audio file")


def test_all_good_rows_exit_zero_and_a_folder_is_read_recursively(model_dir, data, tmp_path):
    output = tmp_path / "preds.csv"
    result = invoke("predict", model_dir, "--input", data / "clips", "--output", output, "--num-workers", 1)
    assert result.exit_code == 0, result.output
    rows = read_csv(output)
    assert [Path(r["audio"]).name for r in rows] == ["c0.wav", "c1.wav", "c2.wav", "c3.wav"]
    assert {r["modalities"] for r in rows} == {"audio"} and not any(r["error"] for r in rows)


def test_a_folder_with_a_metadata_file_gives_the_texts(model_dir, data, tmp_path):
    folder = tmp_path / "with_metadata"
    folder.mkdir()
    soundfile.write(folder / "a.wav", noise(4000), SAMPLING_RATE)
    (folder / "metadata.csv").write_text("file_name,text\na.wav,kids are talking\n")
    output = tmp_path / "preds.csv"
    result = invoke("predict", model_dir, "--input", folder, "--output", output)
    assert result.exit_code == 0, result.output
    assert read_csv(output)[0]["modalities"] == "audio+text"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labels", "calm,angry,happy"], "the model was trained for the labels ['calm', 'angry', 'sad'], not "
                                           "['calm', 'angry', 'happy']"),
        (["--output", "preds.txt"], "preds.txt: the output must be a .csv or .jsonl file"),
        (["--text-column", "transcript"], "no column 'transcript' of texts"),
        (["--audio-column", "path"], "no column 'path' of audio paths"),
        (["--audio", "x.wav"], "give either --input (many pairs) or --audio / --text (one pair), not both"),
    ],
)  # fmt: skip
def test_bad_requests_fail_with_a_message_and_write_nothing(model_dir, data, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    base = ["predict", model_dir, "--input", data / "pairs.csv"]
    if "--output" not in args:
        base += ["--output", "preds.csv"]
    result = invoke(*base, *args)
    assert result.exit_code == 1, result.output
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "preds.csv").exists()


def test_predict_on_a_folder_that_is_not_a_model(data, tmp_path):
    result = invoke("predict", data, "--input", data / "pairs.csv", "--output", tmp_path / "p.csv")
    assert result.exit_code == 1
    assert f"{data} is not an mmclassify model folder" in result.output


def test_one_pair_without_audio(model_dir):
    result = invoke("predict", model_dir, "--text", "kids are talking", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["modalities"] == "text"
