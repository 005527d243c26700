"""The issue's plain log-mel CNN on RAVDESS, built from torch and torchaudio alone (issue 4, a reference point).

Issue 4 gives 52% unweighted accuracy (UA) for "a plain CNN" on RAVDESS, actors 21-24 held out. This script builds
one outside mmclassify (none of its code is imported), so that its figure tells whether mmclassify's pipeline loses
something a plain model keeps. The model: 64 log-mel bands (16 kHz, 25 ms windows, 10 ms hops), four blocks of
3x3 convolution, BatchNorm, ReLU and 2x2 max-pooling (32-64-128-128 channels), attention pooling over time,
dropout 0.3, one linear layer; Adam at 1e-3, batch 32, no augmentation. Actors 1-20 train, 21-24 are the test set;
there is no validation split, so the test UA of every epoch is reported (the highest is not a fair selection).

    OMP_NUM_THREADS=1 python benchmarks/plain_cnn_ravdess.py [--normalization dataset|clip] [--epochs 30]

Needs `../shared/data/ravdess`. Writes `benchmarks/results/plain_cnn_ravdess_{normalization}.json`.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import soundfile
import torch
import torchaudio
from _machine import cpu_model  # benchmarks/_machine.py
from torch import nn

HERE = Path(__file__).resolve().parent
RAVDESS = HERE.parent.parent / "shared" / "data" / "ravdess"
LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
CLIP_SAMPLES = 38240  # the longest clip of this copy (2.39 s at 16 kHz); shorter ones are zero-padded


def load_features(normalization: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-mel spectrograms `[clips, 64, frames]`, labels and actor numbers of every clip in the manifest."""
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=64)
    features, labels, actors = [], [], []
    with open(RAVDESS / "manifest.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            waveform, _ = soundfile.read(RAVDESS / row["path"], dtype="float32")
            waveform = torch.nn.functional.pad(torch.from_numpy(waveform), (0, CLIP_SAMPLES))[:CLIP_SAMPLES]
            features.append(torch.log(mel(waveform) + 1e-6))
            labels.append(LABELS.index(row["label"]))
            actors.append(int(row["speaker"]))
    features, actors = torch.stack(features), torch.tensor(actors)
    if normalization == "dataset":  # one mean and variance, from the training actors: the level stays a cue
        train = features[actors <= 20]
        features = (features - train.mean()) / train.std()
    else:
        features = (features - features.mean(dim=(1, 2), keepdim=True)) / features.std(dim=(1, 2), keepdim=True)
    return features, torch.tensor(labels), actors


class PlainCNN(nn.Module):
    def __init__(self, num_labels: int):
        super().__init__()
        channels = [1, 32, 64, 128, 128]
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
                for i, o in zip(channels[:-1], channels[1:], strict=True)
            )
        )
        self.attention = nn.Linear(channels[-1], 1)
        self.dropout = nn.Dropout(0.3)
        self.classifier = nn.Linear(channels[-1], num_labels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        frames = self.blocks(features[:, None]).mean(dim=2).transpose(1, 2)  # [batch, frames, channels]
        weights = torch.softmax(self.attention(frames), dim=1)
        return self.classifier(self.dropout((weights * frames).sum(dim=1)))


def unweighted_accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    recalls = [(predictions[labels == c] == c).float().mean().item() for c in labels.unique()]
    return sum(recalls) / len(recalls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normalization", choices=["dataset", "clip"], default="dataset")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not RAVDESS.is_dir():
        raise SystemExit(f"{RAVDESS} not found: this benchmark needs the shared RAVDESS recordings")

    torch.manual_seed(args.seed)
    features, labels, actors = load_features(args.normalization)
    train, test = actors <= 20, actors >= 21
    train_features, train_labels = features[train], labels[train]
    test_features, test_labels = features[test], labels[test]
    model = PlainCNN(len(LABELS))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history, start = [], time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(train_labels))
        for begin in range(0, len(order), 32):
            batch = order[begin : begin + 32]
            loss = nn.functional.cross_entropy(model(train_features[batch]), train_labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            predictions = torch.cat([model(chunk).argmax(-1) for chunk in test_features.split(64)])
        history.append({"epoch": epoch, "test_unweighted_accuracy": unweighted_accuracy(predictions, test_labels)})
        print(f"epoch {epoch}: test UA {100 * history[-1]['test_unweighted_accuracy']:.1f}", flush=True)

    last_five = [h["test_unweighted_accuracy"] for h in history[-5:]]
    result = {
        "question": "issue 4's plain CNN on RAVDESS (actors 21-24 held out): is its 52% UA reproduced here?",
        "normalization": args.normalization,
        "epochs": args.epochs,
        "seconds": round(time.perf_counter() - start, 1),
        "machine": cpu_model(),
        "threads": torch.get_num_threads(),
        "test_unweighted_accuracy_last_epoch": history[-1]["test_unweighted_accuracy"],
        "test_unweighted_accuracy_mean_last_five": sum(last_five) / len(last_five),
        "history": history,
    }
    out = HERE / "results" / f"plain_cnn_ravdess_{args.normalization}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2))


if __name__ == "__main__":
    main()
