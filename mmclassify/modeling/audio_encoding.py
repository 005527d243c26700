"""Running any audio encoder (wav2vec2 family or the spectrogram CNN) on a padded batch.

wav2vec2-base, HuBERT-base and WavLM-base normalise the first convolution of their waveform front-end with a
GroupNorm over time (`feat_extract_norm="group"`). Its statistics include whatever padding follows a clip, so a clip's
outputs change with the batch it sits in. `make_padding_invariant` swaps that GroupNorm for `MaskedGroupNorm`, which
takes its statistics from the clip's own frames only; the weights and their names are unchanged, so pretrained
checkpoints load as they are. Everything after the front-end is padding-aware once the attention mask is passed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from .masking import lengths_to_mask, masked_normalize


class MaskedGroupNorm(nn.GroupNorm):
    """GroupNorm with one group per channel whose statistics skip the padded frames.

    The valid lengths of the current batch are set with `valid_lengths(...)` around the encoder's forward, because
    the encoder's own forward passes nothing but the features to its normalisation layers.
    """

    lengths: torch.Tensor | None = None

    @contextlib.contextmanager
    def valid_lengths(self, lengths: torch.Tensor) -> Iterator[None]:
        self.lengths = lengths
        try:
            yield
        finally:
            self.lengths = None

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # features: [batch, channels, frames]
        # Without padding (every clip as long as the batch), plain GroupNorm gives the same result, faster.
        if self.lengths is None or bool((self.lengths >= features.shape[-1]).all()):
            return super().forward(features)
        mask = lengths_to_mask(self.lengths, features.shape[-1])[:, None, :]
        normalized = masked_normalize(features.float(), mask, dim=-1, eps=self.eps).to(features.dtype)
        return normalized * self.weight[None, :, None] + self.bias[None, :, None]


def _first_group_norm_layer(encoder: nn.Module) -> nn.Module | None:
    """The first conv layer of a wav2vec2-family front-end when it is normalised by a GroupNorm, else None."""
    conv_layers = getattr(getattr(encoder, "feature_extractor", None), "conv_layers", None)
    if not conv_layers or not isinstance(getattr(conv_layers[0], "layer_norm", None), nn.GroupNorm):
        return None
    return conv_layers[0]


def make_padding_invariant(encoder: nn.Module) -> None:
    """Replace a group-normalised front-end's GroupNorm by a `MaskedGroupNorm` with the same parameters."""
    layer = _first_group_norm_layer(encoder)
    if layer is None or isinstance(layer.layer_norm, MaskedGroupNorm):
        return
    old = layer.layer_norm
    new = MaskedGroupNorm(old.num_groups, old.num_channels, eps=old.eps, affine=old.affine)
    new.weight, new.bias = old.weight, old.bias
    layer.layer_norm = new


def encode_audio(
    encoder: nn.Module,
    input_values: torch.Tensor,
    attention_mask: torch.Tensor,
    layer_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame vectors `[batch, frames, hidden]` and their boolean mask `[batch, frames]`.

    With `layer_weights`, the frames are the softmax-weighted sum of all hidden layers instead of the last one.
    """
    norm_layer = _first_group_norm_layer(encoder)
    context = contextlib.nullcontext()
    if norm_layer is not None and isinstance(norm_layer.layer_norm, MaskedGroupNorm):
        conv = norm_layer.conv
        first_lengths = torch.div(attention_mask.sum(-1) - conv.kernel_size[0], conv.stride[0], rounding_mode="floor")
        context = norm_layer.layer_norm.valid_lengths(first_lengths + 1)
    with context:
        outputs = encoder(input_values, attention_mask=attention_mask, output_hidden_states=layer_weights is not None)
    if layer_weights is None:
        hidden = outputs.last_hidden_state
    else:
        stacked = torch.stack(outputs.hidden_states, dim=0)
        weights = torch.softmax(layer_weights, dim=0).to(stacked.dtype)
        hidden = (stacked * weights[:, None, None, None]).sum(dim=0)
    frame_mask = encoder._get_feature_vector_attention_mask(hidden.shape[1], attention_mask).bool()
    return hidden, frame_mask
