"""Building a model and its processor from a recipe's `model` section."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from huggingface_hub.errors import StrictDataclassError
from tokenizers.pre_tokenizers import BertPreTokenizer
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    BertTokenizerFast,
    Wav2Vec2FeatureExtractor,
)

from .configuration import AudioTextConfig, SpectrogramCNNConfig
from .data.recipe import ModelSection, RecipeError
from .modeling import AudioTextForSequenceClassification, SpectrogramCNNModel
from .processing import AudioTextProcessor

SCRATCH_AUDIO = "spectrogram-cnn"
SCRATCH_TEXT = "scratch-bert"
# A from-scratch BERT small enough to train in seconds on a CPU; any field can be overridden in the recipe.
SCRATCH_BERT_DEFAULTS = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 128,
}
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tokenizer_from_texts(texts: Iterable[str]) -> BertTokenizerFast:
    """A lower-casing word-level BERT tokenizer whose vocabulary is every word of `texts`."""
    pre_tokenize = BertPreTokenizer().pre_tokenize_str
    words = sorted({word for text in texts for word, _ in pre_tokenize(text.lower())})
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + words)}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True)


def _reject_unknown(unknown: Iterable[str], where: str, config_name: str) -> None:
    # Configs keep any keyword as an attribute, so a misspelt setting would otherwise be silently ignored.
    if unknown:
        fields = ", ".join(f"{where}.{key}" for key in sorted(unknown))
        raise RecipeError(f"unknown field(s) {fields}: {config_name} has no such setting")


def _checked_config(config_class: type, settings: dict, where: str):
    """`config_class(**settings)`, or a `RecipeError` that names the recipe section and says what is wrong."""
    _reject_unknown(set(settings) - {f.name for f in dataclasses.fields(config_class)}, where, config_class.__name__)
    try:
        return config_class(**settings)
    except (StrictDataclassError, ValueError, TypeError) as err:
        message = str(err).strip().splitlines()[-1].strip().removeprefix("ValueError: ")  # the validator's own
        raise RecipeError(f"invalid {where} setting: {message}") from err


def _pretrained_config(name_or_path: str, overrides: dict, where: str):
    """A checkpoint's config with the recipe's overrides applied; unknown override names are an error."""
    config, unused = AutoConfig.from_pretrained(name_or_path, return_unused_kwargs=True, **overrides)
    _reject_unknown(unused, where, f"{type(config).__name__} of {name_or_path}")
    return config


def audio_sampling_rate(section: ModelSection) -> int:
    """The rate the recipe's audio encoder takes, known before the model is built (data is decoded at it)."""
    if section.audio_encoder == SCRATCH_AUDIO:
        return _checked_config(SpectrogramCNNConfig, section.audio_config, "model.audio_config").sampling_rate
    return AutoFeatureExtractor.from_pretrained(section.audio_encoder).sampling_rate


def build_model_and_processor(
    section: ModelSection, labels: list[str], train_texts: Iterable[str] = ()
) -> tuple[AudioTextForSequenceClassification, AudioTextProcessor]:
    """A new classifier for `labels` and its processor.

    Encoders named by a Hub id or folder are loaded pretrained; `spectrogram-cnn` and `scratch-bert` are built
    from scratch (the latter with a vocabulary made of `train_texts`).
    """
    _checked_config(AudioTextConfig, section.options, "model")  # before building or downloading any encoder
    if section.audio_encoder == SCRATCH_AUDIO:
        audio_config = _checked_config(SpectrogramCNNConfig, section.audio_config, "model.audio_config")
        audio_model = SpectrogramCNNModel(audio_config)
        # The waveform keeps its level when the spectrogram does (normalization "none"): the level is then a cue.
        feature_extractor = Wav2Vec2FeatureExtractor(
            sampling_rate=audio_config.sampling_rate,
            do_normalize=audio_config.normalization != "none",
            return_attention_mask=True,
        )
    else:
        audio_config = _pretrained_config(section.audio_encoder, section.audio_config, "model.audio_config")
        audio_model = AutoModel.from_pretrained(section.audio_encoder, config=audio_config)
        feature_extractor = AutoFeatureExtractor.from_pretrained(section.audio_encoder)

    if section.text_encoder == SCRATCH_TEXT:
        tokenizer = tokenizer_from_texts(train_texts)
        settings = {"vocab_size": len(tokenizer), **SCRATCH_BERT_DEFAULTS, **section.text_config}
        text_config = _checked_config(BertConfig, settings, "model.text_config")
        text_model = BertModel(text_config)
    else:
        tokenizer = AutoTokenizer.from_pretrained(section.text_encoder)
        text_config = _pretrained_config(section.text_encoder, section.text_config, "model.text_config")
        text_model = AutoModel.from_pretrained(section.text_encoder, config=text_config)

    model = AudioTextForSequenceClassification.from_audio_text_pretrained(
        audio_model=audio_model,
        text_model=text_model,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        **section.options,
    )
    processor = AudioTextProcessor(feature_extractor, tokenizer, trim_silence_db=section.trim_silence_db or None)
    return model, processor
