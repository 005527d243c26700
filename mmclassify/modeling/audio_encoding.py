"""Running any audio encoder (wav2vec2 family or the spectrogram CNN) on a padded batch.

wav2vec2-base, HuBERT-base and WavLM-base normalise the first convolution of their waveform front-end with a
GroupNorm over time (`feat_extract_norm="group"`). Its statistics include whatever padding follows a clip, so a clip's
outputs change with the batch it sits in. `make_padding_invariant` swaps that GroupNorm for `MaskedGroupNorm`, which
takes its statistics from the clip's own frames only; the weights and their names are unchanged, so pretrained
checkpoints load as they are. data2vec-audio stacks several positional convolutions; the encoder zeroes padded frames
only before the first, so later ones would read the previous one's non-zero output in the padding:
`MaskedPositionalConvEmbedding` zeroes padded frames after each. Everything else is padding-aware once the attention
mask is passed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .masking import lengths_to_mask


class ValidLengths:
    """Holds the valid lengths of the batch being encoded, set with `valid_lengths(...)` around the encoder's forward.

    The encoders' own forward passes pass nothing but the features to their inner layers, so the layers that must
    skip padding are told the lengths this way, for the duration of one forward pass.
    """

    lengths: torch.Tensor | None = None

    @contextlib.contextmanager
    def valid_lengths(self, lengths: torch.Tensor) -> Iterator[None]:
        self.lengths = lengths
        try:
            yield
        finally:
            self.lengths = None


class MaskedGroupNorm(ValidLengths, nn.GroupNorm):
    """GroupNorm with one group per channel whose statistics skip the padded frames."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # features: [batch, channels, frames]
        # Without padding (every clip as long as the batch), plain GroupNorm gives the same result, faster.
        if self.lengths is None or bool((self.lengths >= features.shape[-1]).all()):
            return super().forward(features)
        # Each clip normalised on its own frames by the native kernel, its padded frames set to zero (nothing
        # downstream reads them). Masking the whole tensor instead made this layer several times slower than GroupNorm,
        # and so did zero-filling a fresh tensor before writing every frame again.
        normalized = torch.empty_like(features)
        for index, length in enumerate(self.lengths.clamp(min=1).tolist()):
            clip = features[index, None, :, :length].float()
            normalized[index, :, :length] = F.group_norm(clip, self.num_groups, self.weight, self.bias, self.eps)[0]
            normalized[index, :, length:] = 0.0
        return normalized


class MaskedPositionalConvEmbedding(ValidLengths, nn.Module):
    """data2vec-audio's stack of positional convolutions, with padded frames zeroed after every convolution.

    Holds the original `layers`, so parameter names are unchanged. Valid frame counts are set with `valid_lengths`.
    """

    def __init__(self, layers: nn.ModuleList):
        super().__init__()
        self.layers = layers

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:  # hidden_states: [batch, frames, hidden]
        hidden_states = hidden_states.transpose(1, 2)
        mask = None if self.lengths is None else lengths_to_mask(self.lengths, hidden_states.shape[-1])[:, None, :]
        for layer in self.layers:
            hidden_states = layer(hidden_states)
            if mask is not None:
                hidden_states = hidden_states * mask.to(hidden_states.dtype)
        return hidden_states.transpose(1, 2)


def _stacked_positional_convs(encoder: nn.Module) -> nn.Module | None:
    """The positional-convolution module of a data2vec-audio encoder (a stack of `layers`), else None."""
    pos_conv = getattr(getattr(encoder, "encoder", None), "pos_conv_embed", None)
    return pos_conv if isinstance(getattr(pos_conv, "layers", None), nn.ModuleList) else None


def _first_group_norm_layer(encoder: nn.Module) -> nn.Module | None:
    """The first conv layer of a wav2vec2-family front-end when it is normalised by a GroupNorm, else None."""
    conv_layers = getattr(getattr(encoder, "feature_extractor", None), "conv_layers", None)
    if not conv_layers or not isinstance(getattr(conv_layers[0], "layer_norm", None), nn.GroupNorm):
        return None
    return conv_layers[0]


def make_padding_invariant(encoder: nn.Module) -> None:
    """Replace a group-normalised front-end's GroupNorm by a `MaskedGroupNorm` with the same parameters, and
    data2vec-audio's positional convolutions by a `MaskedPositionalConvEmbedding` holding the same layers."""
    pos_conv = _stacked_positional_convs(encoder)
    if pos_conv is not None and not isinstance(pos_conv, MaskedPositionalConvEmbedding):
        encoder.encoder.pos_conv_embed = MaskedPositionalConvEmbedding(pos_conv.layers)
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
    pos_conv = _stacked_positional_convs(encoder)
    context = contextlib.ExitStack()
    if norm_layer is not None and isinstance(norm_layer.layer_norm, MaskedGroupNorm):
        conv = norm_layer.conv
        first_lengths = torch.div(attention_mask.sum(-1) - conv.kernel_size[0], conv.stride[0], rounding_mode="floor")
        context.enter_context(norm_layer.layer_norm.valid_lengths(first_lengths + 1))
    if isinstance(pos_conv, MaskedPositionalConvEmbedding):
        frames = encoder._get_feat_extract_output_lengths(attention_mask.sum(-1), add_adapter=False)
        context.enter_context(pos_conv.valid_lengths(frames))
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
