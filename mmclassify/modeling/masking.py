"""Helpers that keep padded frames and tokens out of every statistic and every attention."""

from __future__ import annotations

import torch


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """Boolean mask `[batch, max_length]`, True on the first `lengths[i]` positions of row i."""
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] < lengths[:, None]


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """Mean of `values` over `dim`, counting only positions where `mask` (broadcastable to `values`) is True."""
    mask = mask.to(values.dtype).expand_as(values)
    count = mask.sum(dim=dim, keepdim=True).clamp(min=1.0)
    return (values * mask).sum(dim=dim, keepdim=True) / count


def masked_normalize(
    values: torch.Tensor, mask: torch.Tensor, dim: int | tuple[int, ...], eps: float = 1e-5
) -> torch.Tensor:
    """Zero-mean, unit-variance normalisation over `dim` using only the valid positions."""
    mean = masked_mean(values, mask, dim)
    var = masked_mean((values - mean) ** 2, mask, dim)
    return (values - mean) / torch.sqrt(var + eps)
