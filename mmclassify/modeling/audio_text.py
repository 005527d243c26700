"""`AudioTextForSequenceClassification`: an audio encoder and a text encoder fused by cross-attention."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.utils import ModelOutput, logging

from ..configuration import AudioTextConfig
from .audio_encoding import encode_audio, make_padding_invariant
from .fusion import CrossAttention, CrossAttentionBlock
from .masking import masked_mean

logger = logging.get_logger(__name__)


@dataclass
class AudioTextClassifierOutput(ModelOutput):
    """Output of [`AudioTextForSequenceClassification`].

    Args:
        loss: Cross-entropy loss, when `labels` were given.
        logits: Classification scores `[batch, num_labels]`.
        audio_to_text_attentions: With `output_attentions=True`, one tensor per fusion block,
            `[batch, heads, audio_frames, text_tokens]`: how much each audio frame attended to each token.
        text_to_audio_attentions: Same, `[batch, heads, text_tokens, audio_frames]`.
        audio_frame_mask: Boolean mask of the audio frames the fusion saw (`[batch, audio_frames]`).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    audio_to_text_attentions: tuple[torch.Tensor, ...] | None = None
    text_to_audio_attentions: tuple[torch.Tensor, ...] | None = None
    audio_frame_mask: torch.Tensor | None = None


class AudioTextPreTrainedModel(PreTrainedModel):
    config: AudioTextConfig
    config_class = AudioTextConfig
    base_model_prefix = "audio_text"
    main_input_name = "input_values"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, CrossAttention):
            # Xavier, as torch's nn.MultiheadAttention initialises its projections. With the default N(0, 0.02) the
            # query-key products start near zero, attention is uniform, and the fusion sees no interaction between
            # the modalities to learn from: tasks that need both modalities sit at chance for many epochs.
            for projection in (module.q_proj, module.k_proj, module.v_proj, module.out_proj):
                nn.init.xavier_uniform_(projection.weight)


class AudioTextForSequenceClassification(AudioTextPreTrainedModel):
    """Audio encoder + text encoder -> projections -> N bidirectional cross-attention blocks -> masked mean
    pooling of both streams -> classification head.

    `fusion="concat"` skips the blocks (late fusion of the pooled vectors); `modalities="audio"` or `"text"` builds
    the single-modality ablation of the same model.
    """

    def __init__(
        self,
        config: AudioTextConfig,
        audio_model: PreTrainedModel | None = None,
        text_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        width = config.fusion_hidden_size
        pooled_width = 0
        if config.uses_audio:
            self.audio_encoder = audio_model if audio_model is not None else AutoModel.from_config(config.audio_config)
            # Share one config object, so changes made through either are seen by both (and saved).
            self.audio_encoder.config = config.audio_config
            make_padding_invariant(self.audio_encoder)
            self.audio_projection = nn.Linear(config.audio_config.hidden_size, width)
            if config.use_weighted_layer_sum:
                num_layers = config.audio_config.num_hidden_layers + 1
                self.layer_weights = nn.Parameter(torch.ones(num_layers) / num_layers)
            pooled_width += width
        if config.uses_text:
            self.text_encoder = text_model if text_model is not None else AutoModel.from_config(config.text_config)
            self.text_encoder.config = config.text_config
            # The fusion pools the token states itself; an unused pooler would also break DDP (unused parameters).
            if getattr(self.text_encoder, "pooler", None) is not None:
                self.text_encoder.pooler = None
            self.text_projection = nn.Linear(config.text_config.hidden_size, width)
            pooled_width += width
        if config.fusion == "cross_attention" and config.modalities == "audio+text":
            self.fusion_blocks = nn.ModuleList(
                CrossAttentionBlock(
                    width, config.fusion_num_attention_heads, config.fusion_intermediate_size, config.fusion_dropout
                )
                for _ in range(config.fusion_num_layers)
            )
            self.audio_final_norm = nn.LayerNorm(width)
            self.text_final_norm = nn.LayerNorm(width)
        self.classifier = nn.Sequential(
            nn.Dropout(config.classifier_dropout),
            nn.Linear(pooled_width, width),
            nn.GELU(),
            nn.Dropout(config.classifier_dropout),
            nn.Linear(width, config.num_labels),
        )
        self.post_init()
        self._freeze_as_configured()

    def _freeze_as_configured(self) -> None:
        """Freeze what the config's `freeze_*` settings name."""
        config = self.config
        if config.uses_audio and config.freeze_feature_encoder:
            self.freeze_feature_encoder()
        if config.uses_audio and config.freeze_audio_encoder:
            self.audio_encoder.requires_grad_(False)
        if config.uses_text and config.freeze_text_encoder:
            self.text_encoder.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        loaded = super().from_pretrained(*args, **kwargs)
        # Loading replaces every parameter by a new, trainable one, undoing the freezing done in __init__.
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model._freeze_as_configured()
        return loaded

    def freeze_feature_encoder(self) -> None:
        """Freeze the convolutional waveform front-end of a wav2vec2-family audio encoder (no-op for the CNN)."""
        if hasattr(self.audio_encoder, "freeze_feature_encoder"):
            self.audio_encoder.freeze_feature_encoder()

    @classmethod
    def from_audio_text_pretrained(
        cls,
        audio_model_name_or_path: str | None = None,
        text_model_name_or_path: str | None = None,
        **kwargs,
    ) -> AudioTextForSequenceClassification:
        """Build the model from a pretrained audio encoder and a pretrained text encoder.

        Each name is a Hub id (`"facebook/wav2vec2-base"`, `"bert-base-uncased"`) or a local folder. Keyword
        arguments prefixed `audio_` / `text_` go to that encoder's `from_pretrained` (e.g. `audio_revision=`), or
        pass a ready encoder as `audio_model=` / `text_model=`; the rest configure the fusion model
        (`num_labels=`, `id2label=`, `fusion=`, ...). The projections, fusion blocks and head start untrained.

        Example:

        ```python
        >>> model = AudioTextForSequenceClassification.from_audio_text_pretrained(
        ...     "facebook/wav2vec2-base", "bert-base-uncased", num_labels=4
        ... )
        ```
        """
        audio_kwargs = {k[len("audio_") :]: kwargs.pop(k) for k in list(kwargs) if k.startswith("audio_")}
        text_kwargs = {k[len("text_") :]: kwargs.pop(k) for k in list(kwargs) if k.startswith("text_")}
        audio_model = audio_kwargs.pop("model", None)
        if audio_model is None:
            if audio_model_name_or_path is None:
                raise ValueError("Pass `audio_model_name_or_path` (a Hub id or a folder) or `audio_model=`.")
            audio_model = AutoModel.from_pretrained(audio_model_name_or_path, **audio_kwargs)
        text_model = text_kwargs.pop("model", None)
        if text_model is None:
            if text_model_name_or_path is None:
                raise ValueError("Pass `text_model_name_or_path` (a Hub id or a folder) or `text_model=`.")
            text_model = AutoModel.from_pretrained(text_model_name_or_path, **text_kwargs)
        config = AudioTextConfig.from_audio_text_configs(audio_model.config, text_model.config, **kwargs)
        logger.info("Projections, fusion blocks and classification head are newly initialised: train the model.")
        return cls(config, audio_model=audio_model, text_model=text_model)

    def _check_labels(self, labels: torch.Tensor) -> None:
        bad = labels[(labels < 0) | (labels >= self.config.num_labels)]
        if bad.numel():
            raise ValueError(
                f"labels {sorted(set(bad.tolist()))} are outside this model's {self.config.num_labels} classes "
                f"{list(self.config.id2label.values())}."
            )

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool = False,
        **kwargs,
    ) -> AudioTextClassifierOutput:
        r"""
        Args:
            input_values: Raw waveforms `[batch, samples]` at the audio encoder's rate, from the processor.
            attention_mask: Sample mask of `input_values` (1 = real sample, 0 = padding).
            input_ids: Token ids `[batch, tokens]` from the processor.
            text_attention_mask: Token mask of `input_ids`.
            token_type_ids: Segment ids, for text encoders that use them.
            labels: Class indices `[batch]`; when given, the output has the cross-entropy `loss`.
            output_attentions: Return the cross-attention weights of every fusion block.
        """
        pooled, audio, text, audio_mask, text_mask = [], None, None, None, None
        if self.config.uses_audio:
            if input_values is None:
                raise ValueError(f"This model uses audio (modalities={self.config.modalities!r}): pass `input_values`.")
            if attention_mask is None:
                attention_mask = torch.ones_like(input_values, dtype=torch.long)
            layer_weights = self.layer_weights if self.config.use_weighted_layer_sum else None
            audio, audio_mask = encode_audio(self.audio_encoder, input_values, attention_mask, layer_weights)
            audio = self.audio_projection(audio)
        if self.config.uses_text:
            if input_ids is None:
                raise ValueError(f"This model uses text (modalities={self.config.modalities!r}): pass `input_ids`.")
            if text_attention_mask is None:
                text_attention_mask = torch.ones_like(input_ids)
            text_inputs = {"input_ids": input_ids, "attention_mask": text_attention_mask}
            if token_type_ids is not None:
                text_inputs["token_type_ids"] = token_type_ids
            text = self.text_projection(self.text_encoder(**text_inputs).last_hidden_state)
            text_mask = text_attention_mask.bool()

        audio_to_text, text_to_audio = [], []
        if hasattr(self, "fusion_blocks"):
            for block in self.fusion_blocks:
                audio, text, (a2t, t2a) = block(audio, audio_mask, text, text_mask, return_weights=output_attentions)
                audio_to_text.append(a2t)
                text_to_audio.append(t2a)
            audio, text = self.audio_final_norm(audio), self.text_final_norm(text)
        if audio is not None:
            pooled.append(masked_mean(audio, audio_mask[..., None], dim=1).squeeze(1))
        if text is not None:
            pooled.append(masked_mean(text, text_mask[..., None], dim=1).squeeze(1))
        logits = self.classifier(torch.cat(pooled, dim=-1))

        loss = None
        if labels is not None:
            self._check_labels(labels)
            loss = nn.functional.cross_entropy(logits.float(), labels)
        return AudioTextClassifierOutput(
            loss=loss,
            logits=logits,
            audio_to_text_attentions=tuple(audio_to_text) if output_attentions and audio_to_text else None,
            text_to_audio_attentions=tuple(text_to_audio) if output_attentions and text_to_audio else None,
            audio_frame_mask=audio_mask,
        )
