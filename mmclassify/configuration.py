"""Configuration classes: the fused audio+text classifier and the from-scratch spectrogram encoder."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

FUSIONS = ("cross_attention", "concat")
MODALITIES = ("audio+text", "audio", "text")


@strict
class SpectrogramCNNConfig(PreTrainedConfig):
    r"""Configuration of [`SpectrogramCNNModel`], a small audio encoder that trains from scratch.

    Log-mel spectrogram (computed by torchaudio inside the model, from the raw waveform) followed by a stack of
    2-D convolution blocks and a few self-attention layers over time: the attention-CNN family of speech-emotion
    models. Frames are computed without centring (`center=False`) so that a clip's frames never depend on the
    padding that follows it in a batch.

    Args:
        sampling_rate: Rate of the waveform the model expects, in Hz.
        n_fft: FFT size (and window length) of the spectrogram, in samples.
        hop_length: Hop between frames, in samples.
        n_mels: Number of mel bands.
        conv_channels: Output channels of each convolution block; every block halves time and frequency.
        hidden_size: Width of the frame vectors the encoder outputs.
        num_hidden_layers: Self-attention layers over time after the convolutions.
        num_attention_heads: Heads of those layers.
        dropout: Dropout inside the attention layers.
        normalization: How each clip's log-mel features are normalised. `"clip"`: one mean and variance over all
            bands, which removes the recording level and keeps the spectral shape (timbre, pitch: emotion, sound
            events). `"band"`: each mel band's mean over the clip's frames is removed first (cepstral mean
            normalisation, as in speech recognition), which also removes the microphone's and the room's
            colouring, for tasks that must generalise across speakers and recording set-ups. `"none"`: the log-mel
            values as they are, and the processor leaves the waveform's level alone too, so how loud a clip is
            stays a cue (arousal in emotion: anger is loud, sadness quiet) where all clips were recorded alike.
        frequency_warp: Vocal-tract-length perturbation in training: each clip's mel axis is stretched by a random
            factor in [1 - frequency_warp, 1 + frequency_warp], as a new speaker's vocal tract would. 0: off.
        random_lowpass: Bandwidth augmentation in training: the chance that a clip is low-passed at a random mel band
            (from an eighth of the bands up), with a random roll-off, before the log, as a narrow-band microphone,
            a phone line or a low-rate recording would do it. Teaches the model to do without the high bands. 0: off.
        time_masks, time_mask_width: SpecAugment in training: how many spans of frames to blank per clip, and
            the longest span (frames). 0 masks: off.
        freq_masks, freq_mask_width: the same for spans of mel bands.
    """

    model_type = "spectrogram-cnn"

    sampling_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 64
    conv_channels: list[int] | tuple[int, ...] = (16, 32, 64)
    hidden_size: int = 128
    num_hidden_layers: int = 1
    num_attention_heads: int = 4
    dropout: float = 0.1
    normalization: str = "clip"
    frequency_warp: float = 0.0
    random_lowpass: float = 0.0
    time_masks: int = 0
    time_mask_width: int = 10
    freq_masks: int = 0
    freq_mask_width: int = 8
    initializer_range: float = 0.02

    def validate_architecture(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if not self.conv_channels:
            raise ValueError("conv_channels must name at least one convolution block.")
        if self.normalization not in ("clip", "band", "none"):
            raise ValueError(f"normalization must be 'clip', 'band' or 'none', got {self.normalization!r}.")
        if not 0.0 <= self.random_lowpass <= 1.0:
            raise ValueError(f"random_lowpass must be in [0, 1], got {self.random_lowpass}.")
        if not 0.0 <= self.frequency_warp < 1.0:
            raise ValueError(f"frequency_warp must be in [0, 1), got {self.frequency_warp}.")


@strict
class AudioTextConfig(PreTrainedConfig):
    r"""Configuration of [`AudioTextForSequenceClassification`].

    Holds the configuration of both encoders (`audio_config`, `text_config`: any config `AutoConfig` knows, e.g.
    a wav2vec2, HuBERT, WavLM or data2vec-audio config for audio and a BERT-family config for text) and the fusion
    settings.

    Args:
        audio_config: Configuration of the audio encoder (dict or config). Defaults to a [`SpectrogramCNNConfig`].
        text_config: Configuration of the text encoder (dict or config). Defaults to a `BertConfig`.
        fusion: `"cross_attention"` (stacked bidirectional cross-attention blocks, then pooling) or `"concat"`
            (late fusion: the pooled vectors of the two encoders are concatenated).
        modalities: `"audio+text"`, or `"audio"` / `"text"` to build a single-modality ablation of the same model.
        fusion_hidden_size: Common width both encoders are projected to.
        fusion_num_layers: Number of cross-attention blocks.
        fusion_num_attention_heads: Heads of each cross-attention.
        fusion_intermediate_size: Width of the blocks' feed-forward layers (default 4x `fusion_hidden_size`).
        fusion_dropout: Dropout inside the fusion blocks.
        classifier_dropout: Dropout before the classification head.
        linear_classifier: Classify the pooled vectors with one linear layer instead of the default two-layer head
            (Linear-GELU-Linear). The modalities then meet only in the fusion, so a `"concat"` ablation cannot
            combine them beyond a weighted sum, as a test of the fusion needs; and what the fusion finds reaches the
            encoders through one layer instead of two (a task that only the interaction of the modalities can
            solve, trained from scratch, learns only this way: see recipes/fsdd_match.yaml).
        use_weighted_layer_sum: Use a learned softmax-weighted sum of the audio encoder's hidden layers instead of
            its last layer (as `Wav2Vec2ForSequenceClassification` does).
        freeze_feature_encoder: Freeze the convolutional waveform front-end of a wav2vec2-family audio encoder.
        freeze_audio_encoder: Freeze the whole audio encoder.
        freeze_text_encoder: Freeze the whole text encoder.
        max_duration: The longest audio, in seconds, the model classifies at once. A longer clip is classified in
            overlapping windows of this length whose class probabilities are averaged, so memory is bounded by the
            window, not the recording. Training sets it to the recipe's `training.max_duration` (the length of its
            random crops) when that is set; unset, prediction uses 30 s windows.
    """

    model_type = "audio-text-classifier"
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="spectrogram-cnn"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="bert"),
    }

    audio_config: PreTrainedConfig | dict | None = None
    text_config: PreTrainedConfig | dict | None = None
    fusion: str = "cross_attention"
    modalities: str = "audio+text"
    fusion_hidden_size: int = 256
    fusion_num_layers: int = 2
    fusion_num_attention_heads: int = 4
    fusion_intermediate_size: int | None = None
    fusion_dropout: float = 0.1
    classifier_dropout: float = 0.1
    linear_classifier: bool = False
    use_weighted_layer_sum: bool = False
    freeze_feature_encoder: bool = True
    freeze_audio_encoder: bool = False
    freeze_text_encoder: bool = False
    max_duration: float | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self.fusion_intermediate_size = self.fusion_intermediate_size or 4 * self.fusion_hidden_size
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}.")
        if self.modalities not in MODALITIES:
            raise ValueError(f"modalities must be one of {MODALITIES}, got {self.modalities!r}.")
        if self.fusion_hidden_size % self.fusion_num_attention_heads:
            raise ValueError(
                f"fusion_hidden_size ({self.fusion_hidden_size}) must be divisible by fusion_num_attention_heads "
                f"({self.fusion_num_attention_heads})."
            )
        if self.max_duration is not None and self.max_duration <= 0:
            raise ValueError(f"max_duration must be a positive number of seconds, got {self.max_duration}.")

    @property
    def uses_audio(self) -> bool:
        return self.modalities != "text"

    @property
    def uses_text(self) -> bool:
        return self.modalities != "audio"

    @classmethod
    def from_audio_text_configs(
        cls, audio_config: PreTrainedConfig, text_config: PreTrainedConfig, **kwargs
    ) -> AudioTextConfig:
        """Build a config from the configs of the two encoders (and fusion settings as keyword arguments)."""
        return cls(audio_config=audio_config.to_dict(), text_config=text_config.to_dict(), **kwargs)


# The audio encoder's config is built through AutoConfig from its model_type (see `sub_configs_defaults`). Registered
# here rather than in mmclassify/__init__.py so that this file is enough on its own: it is the configuration code a
# model pushed to the Hub carries (mmclassify.hub), which transformers runs without mmclassify.
AutoConfig.register(SpectrogramCNNConfig.model_type, SpectrogramCNNConfig, exist_ok=True)
