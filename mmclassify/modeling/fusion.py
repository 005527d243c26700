"""Bidirectional cross-attention fusion: audio frames attend to text tokens and tokens attend to frames."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossAttention(nn.Module):
    """Multi-head attention of `queries` over `keys_values`, ignoring padded keys.

    A learned null token is always among the keys, so a query can attend to "nothing here": without it, softmax
    forces every query to spread a full unit of attention over the other modality, and how well the two modalities
    match (the very thing the fusion must detect) cannot show in the result.

    Uses `torch.nn.functional.scaled_dot_product_attention` (SDPA); with `return_weights=True` it computes the
    attention explicitly so the weights can be returned (for explanations).
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.null_token = nn.Parameter(torch.zeros(hidden_size))
        self.dropout = dropout

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        queries: torch.Tensor,
        keys_values: torch.Tensor,
        key_mask: torch.Tensor,
        return_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch = keys_values.shape[0]
        keys_values = torch.cat([self.null_token.expand(batch, 1, -1), keys_values], dim=1)
        key_mask = torch.cat([key_mask.new_ones(batch, 1), key_mask], dim=1)
        q = self._split_heads(self.q_proj(queries))
        k = self._split_heads(self.k_proj(keys_values))
        v = self._split_heads(self.v_proj(keys_values))
        attn_mask = key_mask[:, None, None, :]  # True = may be attended to
        dropout = self.dropout if self.training else 0.0
        weights = None
        if return_weights:
            scores = (q @ k.transpose(-1, -2)) / self.head_dim**0.5
            weights = scores.masked_fill(~attn_mask, torch.finfo(scores.dtype).min).softmax(dim=-1)
            context = F.dropout(weights, p=dropout, training=self.training) @ v
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        context = context.transpose(1, 2).reshape(batch, queries.shape[1], -1)
        # Weights are returned over the real keys only; what is missing from 1 went to the null token.
        return self.out_proj(context), weights[..., 1:] if weights is not None else None


class FeedForward(nn.Sequential):
    def __init__(self, hidden_size: int, intermediate_size: int, dropout: float):
        super().__init__(
            nn.Linear(hidden_size, intermediate_size),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(intermediate_size, hidden_size),
            nn.Dropout(dropout),
        )


class CrossAttentionBlock(nn.Module):
    """One pre-norm block: both streams attend to the other (from the block's inputs), then a feed-forward each."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, dropout: float):
        super().__init__()
        self.audio_norm = nn.LayerNorm(hidden_size)
        self.text_norm = nn.LayerNorm(hidden_size)
        self.audio_to_text = CrossAttention(hidden_size, num_heads, dropout)
        self.text_to_audio = CrossAttention(hidden_size, num_heads, dropout)
        self.audio_ffn_norm = nn.LayerNorm(hidden_size)
        self.text_ffn_norm = nn.LayerNorm(hidden_size)
        self.audio_ffn = FeedForward(hidden_size, intermediate_size, dropout)
        self.text_ffn = FeedForward(hidden_size, intermediate_size, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        audio: torch.Tensor,
        audio_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        return_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor | None, torch.Tensor | None]]:
        audio_normed, text_normed = self.audio_norm(audio), self.text_norm(text)
        audio_update, audio_weights = self.audio_to_text(audio_normed, text_normed, text_mask, return_weights)
        text_update, text_weights = self.text_to_audio(text_normed, audio_normed, audio_mask, return_weights)
        audio = audio + self.dropout(audio_update)
        text = text + self.dropout(text_update)
        audio = audio + self.audio_ffn(self.audio_ffn_norm(audio))
        text = text + self.text_ffn(self.text_ffn_norm(text))
        return audio, text, (audio_weights, text_weights)
