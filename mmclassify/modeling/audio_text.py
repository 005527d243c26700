"""`AudioTextForSequenceClassification`: an audio encoder and a text encoder fused by cross-attention."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.utils import ModelOutput, logging

from ..configuration import AudioTextConfig, SpectrogramCNNConfig
from .audio_encoding import encode_audio, make_padding_invariant
from .fusion import CrossAttention, CrossAttentionBlock
from .masking import masked_mean
from .spectrogram_cnn import SpectrogramCNNModel

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
    pooling of both streams -> classification head (two layers, or one with `linear_classifier`).

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
                if getattr(config.audio_config, "layerdrop", 0.0) > 0.0:
                    # A dropped layer leaves no hidden state behind, and the weighted sum needs all of them.
                    logger.warning(
                        f"use_weighted_layer_sum: the audio encoder's layerdrop ({config.audio_config.layerdrop}) "
                        "is set to 0, since the weighted sum needs every layer's output."
                    )
                    config.audio_config.layerdrop = 0.0
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
        if config.linear_classifier:
            self.classifier = nn.Sequential(
                nn.Dropout(config.classifier_dropout), nn.Linear(pooled_width, config.num_labels)
            )
        else:
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

    def _encode_text(
        self, input_ids: torch.Tensor, text_attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None
    ) -> torch.Tensor:
        """The text encoder's last hidden state `[batch, tokens, hidden]`."""
        text_inputs = {"input_ids": input_ids, "attention_mask": text_attention_mask}
        if token_type_ids is not None:
            text_inputs["token_type_ids"] = token_type_ids
        return self.text_encoder(**text_inputs).last_hidden_state

    def _audio_from_hidden_states(
        self, hidden_states: torch.Tensor, frame_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame vectors and mask from precomputed audio encoder output (mixing the layers, if weighted)."""
        weighted = self.config.use_weighted_layer_sum
        expected = "[batch, layers, frames, hidden]" if weighted else "[batch, frames, hidden]"
        if hidden_states.dim() != (4 if weighted else 3):
            raise ValueError(
                f"audio_hidden_states must be {expected} (use_weighted_layer_sum={weighted}), "
                f"got shape {tuple(hidden_states.shape)}."
            )
        hidden_states = hidden_states.to(self.audio_projection.weight.dtype)
        if frame_mask is None:
            frame_mask = torch.ones(hidden_states.shape[0], hidden_states.shape[-2], dtype=torch.bool)
        frame_mask = frame_mask.to(hidden_states.device).bool()
        if weighted:
            # The same sum as `encode_audio`'s, over layers stacked first.
            stacked = hidden_states.transpose(0, 1)
            weights = torch.softmax(self.layer_weights, dim=0).to(stacked.dtype)
            hidden_states = (stacked * weights[:, None, None, None]).sum(dim=0)
        return hidden_states, frame_mask

    def encoder_outputs(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs,
    ) -> dict[str, torch.Tensor]:
        r"""Run only the encoders on a batch, returning what `forward` accepts in place of the raw inputs.

        Takes the processor's batch (extra keys such as `labels` are ignored) and returns, for the modalities the
        model uses, `audio_hidden_states` (`[batch, frames, hidden]`, or `[batch, layers, frames, hidden]` with
        `use_weighted_layer_sum`: every hidden layer, before the learned weights mix them) with its boolean
        `audio_frame_mask` `[batch, frames]`, and `text_hidden_states` `[batch, tokens, hidden]` with
        `text_attention_mask`. `forward(**encoder_outputs(**batch), labels=...)` gives the same result as
        `forward(**batch)`. The encoders run as they do in `forward`, in whatever mode (train / eval) they are in.
        """
        outputs: dict[str, torch.Tensor] = {}
        if self.config.uses_audio:
            if input_values is None:
                raise ValueError(f"This model uses audio (modalities={self.config.modalities!r}): pass `input_values`.")
            if attention_mask is None:
                attention_mask = torch.ones_like(input_values, dtype=torch.long)
            if self.config.use_weighted_layer_sum:
                # `encode_audio` mixes the layers itself: keep the encoder's own output, all its hidden layers.
                captured = []
                hook = self.audio_encoder.register_forward_hook(lambda _module, _args, out: captured.append(out))
                try:
                    _, frame_mask = encode_audio(self.audio_encoder, input_values, attention_mask, self.layer_weights)
                finally:
                    hook.remove()
                hidden = torch.stack(captured[-1].hidden_states, dim=1)
            else:
                hidden, frame_mask = encode_audio(self.audio_encoder, input_values, attention_mask)
            outputs["audio_hidden_states"], outputs["audio_frame_mask"] = hidden, frame_mask
        if self.config.uses_text:
            if input_ids is None:
                raise ValueError(f"This model uses text (modalities={self.config.modalities!r}): pass `input_ids`.")
            if text_attention_mask is None:
                text_attention_mask = torch.ones_like(input_ids)
            outputs["text_hidden_states"] = self._encode_text(input_ids, text_attention_mask, token_type_ids)
            outputs["text_attention_mask"] = text_attention_mask
        return outputs

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool = False,
        audio_hidden_states: torch.Tensor | None = None,
        audio_frame_mask: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        **kwargs,
    ) -> AudioTextClassifierOutput:
        r"""
        Args:
            input_values: Raw waveforms `[batch, samples]` at the audio encoder's rate, from the processor.
            attention_mask: Sample mask of `input_values` (1 = real sample, 0 = padding).
            input_ids: Token ids `[batch, tokens]` from the processor.
            text_attention_mask: Token mask of `input_ids` (or of `text_hidden_states`).
            token_type_ids: Segment ids, for text encoders that use them.
            labels: Class indices `[batch]`; when given, the output has the cross-entropy `loss`.
            output_attentions: Return the cross-attention weights of every fusion block.
            audio_hidden_states: Precomputed audio encoder output, given instead of `input_values` (the audio
                encoder is then skipped), as [`~AudioTextForSequenceClassification.encoder_outputs`] returns it: the
                last hidden state `[batch, frames, hidden]`, or with `use_weighted_layer_sum` all hidden layers
                `[batch, layers, frames, hidden]`, which the learned `layer_weights` then mix as usual. Everything
                after the encoder (projection, fusion, pooling, head, loss) is the same as from `input_values`.
                `mmclassify.encoder_cache` caches these for frozen encoders.
            audio_frame_mask: Boolean frame mask `[batch, frames]` of `audio_hidden_states` (True = real frame);
                all frames are real when omitted.
            text_hidden_states: Precomputed text encoder output `[batch, tokens, hidden]`, given instead of
                `input_ids` (the text encoder is then skipped); its token mask is `text_attention_mask`.
        """
        pooled, audio, text, audio_mask, text_mask = [], None, None, None, None
        if self.config.uses_audio:
            if audio_hidden_states is not None:
                if input_values is not None:
                    raise ValueError("Pass `input_values` or `audio_hidden_states`, not both.")
                audio, audio_mask = self._audio_from_hidden_states(audio_hidden_states, audio_frame_mask)
            else:
                if input_values is None:
                    raise ValueError(
                        f"This model uses audio (modalities={self.config.modalities!r}): pass `input_values` "
                        "(or precomputed `audio_hidden_states`)."
                    )
                if attention_mask is None:
                    attention_mask = torch.ones_like(input_values, dtype=torch.long)
                layer_weights = self.layer_weights if self.config.use_weighted_layer_sum else None
                audio, audio_mask = encode_audio(self.audio_encoder, input_values, attention_mask, layer_weights)
            audio = self.audio_projection(audio)
        if self.config.uses_text:
            if text_hidden_states is not None:
                if input_ids is not None:
                    raise ValueError("Pass `input_ids` or `text_hidden_states`, not both.")
                if text_attention_mask is None:
                    text_attention_mask = torch.ones(text_hidden_states.shape[:2], dtype=torch.long)
                    text_attention_mask = text_attention_mask.to(text_hidden_states.device)
                text = text_hidden_states.to(self.text_projection.weight.dtype)
            else:
                if input_ids is None:
                    raise ValueError(
                        f"This model uses text (modalities={self.config.modalities!r}): pass `input_ids` "
                        "(or precomputed `text_hidden_states`)."
                    )
                if text_attention_mask is None:
                    text_attention_mask = torch.ones_like(input_ids)
                text = self._encode_text(input_ids, text_attention_mask, token_type_ids)
            text = self.text_projection(text)
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


# `AutoModel.from_config` builds the audio encoder (see `__init__`). Registered here, where it is needed, so that this
# file and the ones it imports are enough on their own: they are the code a model pushed to the Hub carries
# (mmclassify.hub), which transformers runs without mmclassify.
AutoModel.register(SpectrogramCNNConfig, SpectrogramCNNModel, exist_ok=True)
