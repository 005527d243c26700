"""Loading a recipe's data as a 🤗 `DatasetDict` with `audio`, `text` and integer `label` columns."""

from __future__ import annotations

from datasets import Audio, ClassLabel, DatasetDict, load_dataset

from .recipe import Recipe, RecipeError
from .synthetic import make_tones_dataset


def _load_manifests(recipe: Recipe) -> DatasetDict:
    data = recipe.data
    files = {split: recipe.resolve(path) for split, path in data.splits.items()}
    for split, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"{recipe.path}: data.splits.{split}: no such manifest file {path}")
    suffixes = {path.suffix.lower() for path in files.values()}
    builder = "csv" if suffixes == {".csv"} else "json" if suffixes <= {".jsonl", ".json"} else None
    if builder is None:
        raise RecipeError(f"{recipe.path}: data.splits: manifests must all be .csv or all .jsonl, got {suffixes}")
    # One split at a time: loaded together, a split whose columns differ from the others fails inside datasets with
    # a message that names neither the file nor the column.
    splits = DatasetDict(
        {split: load_dataset(builder, data_files=str(path), split="train") for split, path in files.items()}
    )
    for split, dataset in splits.items():
        for column in (data.audio_column, data.text_column, data.label_column):
            if column not in dataset.column_names:
                raise RecipeError(f"{files[split]}: no column {column!r} (columns: {', '.join(dataset.column_names)})")
        folder = files[split].parent
        dataset = dataset.map(lambda row, folder=folder: {"audio": str(folder / row[data.audio_column])})
        renames = {data.text_column: "text", data.label_column: "label"}
        dataset = dataset.rename_columns({old: new for old, new in renames.items() if old != new})
        splits[split] = dataset.cast_column("audio", Audio())
    return splits


def _encode_labels(splits: DatasetDict, labels: list[str], origin: str) -> DatasetDict:
    label2id = {name: i for i, name in enumerate(labels)}

    def encode(row: dict, index: int, split: str) -> dict:
        name = str(row["label"])
        if name not in label2id:
            raise RecipeError(
                f"{origin}: {split} split, row {index} (audio "
                f"{row['audio']['path'] if isinstance(row['audio'], dict) else '?'}) "
                f"has label {name!r}, which is not one of the classes {labels}"
            )
        return {"label": label2id[name]}

    def encode_split(split: str, ds):
        ds = ds.cast_column("audio", Audio(decode=False))
        # The label column is a string column: without `features`, map would store the class ids back as strings.
        features = ds.features.copy()
        features["label"] = ClassLabel(names=labels)
        ds = ds.map(encode, with_indices=True, fn_kwargs={"split": split}, features=features)
        return ds.cast_column("audio", Audio())

    return DatasetDict({split: encode_split(split, ds) for split, ds in splits.items()})


def load_splits(recipe: Recipe) -> tuple[DatasetDict, list[str]]:
    """The recipe's splits and its class names (index = label id)."""
    if recipe.data.source == "tones":
        splits = make_tones_dataset(**recipe.data.generator)
        return splits, splits["train"].features["label"].names
    splits = _load_manifests(recipe)
    labels = recipe.data.labels or sorted({str(label) for label in splits["train"]["label"]})
    splits = _encode_labels(splits, [str(label) for label in labels], str(recipe.path))
    return splits, labels
