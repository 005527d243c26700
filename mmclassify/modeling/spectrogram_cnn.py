"""A small attention-CNN audio encoder over log-mel spectrograms, trained from scratch.

For data sets and machines where no pretrained wav2vec2-family encoder is at hand. The output mirrors what
transformers' audio encoders return (`last_hidden_state`, optional `hidden_states`) plus the frame mask, so the
fusion model treats it like any other encoder.

Padding never leaks into a clip's frames: spectrogram frames are not centred, padded frames are zeroed after every
block (so a convolution sees the same zeros it would see at the edge of the unpadded clip), pooling rounds up, and
attention ignores padded frames.
"""

from __future__ import annotations

import functools

import torch
import torchaudio
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from ..configuration import SpectrogramCNNConfig
from .masking import lengths_to_mask, masked_mean, masked_normalize


@functools.lru_cache(maxsize=8)
def _mel_filterbank(n_freqs: int, n_mels: int, sampling_rate: int) -> torch.Tensor:
    return torchaudio.functional.melscale_fbanks(
        n_freqs, f_min=0.0, f_max=sampling_rate / 2, n_mels=n_mels, sample_rate=sampling_rate
    )


class ConvBlock(nn.Module):
    """Conv 3x3 -> BatchNorm -> ReLU -> max-pool 2x2 over (mel, time)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        # ceil_mode keeps a last, half-covered frame, so no clip ever shrinks to zero frames. ReLU outputs are
        # non-negative, so the zeros of padded frames never win the max: pooling stays padding-invariant.
        self.pool = nn.MaxPool2d(kernel_size=2, ceil_mode=True)

    def forward(self, features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu(self.norm(self.conv(features)))
        hidden = hidden * frame_mask[:, None, None, :]
        return self.pool(hidden)


class SpectrogramCNNModel(PreTrainedModel):
    """Log-mel spectrogram -> convolution blocks -> self-attention over time.

    Takes the processor's `input_values` (raw waveform at `config.sampling_rate`) and `attention_mask`.
    """

    config: SpectrogramCNNConfig
    config_class = SpectrogramCNNConfig
    base_model_prefix = "spectrogram_cnn"
    main_input_name = "input_values"

    def __init__(self, config: SpectrogramCNNConfig):
        super().__init__(config)
        channels = [1, *config.conv_channels]
        self.conv_blocks = nn.ModuleList(ConvBlock(i, o) for i, o in zip(channels[:-1], channels[1:], strict=True))
        mel_bins = config.n_mels
        for _ in config.conv_channels:
            mel_bins = -(-mel_bins // 2)
        self.projection = nn.Linear(channels[-1] * mel_bins, config.hidden_size)
        self.attention_layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=config.hidden_size,
                nhead=config.num_attention_heads,
                dim_feedforward=4 * config.hidden_size,
                dropout=config.dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(config.num_hidden_layers)
        )
        self.post_init()

    def _random_lowpass(self, mel: torch.Tensor) -> torch.Tensor:
        """Low-pass a random `random_lowpass` share of the clips (mel power `[batch, n_mels, frames]`): above a
        random cut-off band the power falls by a random 0.5 to 3 nepers per band, down to the log's floor."""
        batch, n_mels, _ = mel.shape
        chosen = torch.rand(batch, device=mel.device) < self.config.random_lowpass
        cutoff = torch.empty(batch, device=mel.device).uniform_(n_mels / 8, n_mels)
        rolloff = torch.empty(batch, device=mel.device).uniform_(0.5, 3.0)
        bands = torch.arange(n_mels, device=mel.device)[None, :]
        attenuation = (bands - cutoff[:, None]).clamp(min=0.0) * rolloff[:, None] * chosen[:, None]
        return mel * torch.exp(-attenuation)[:, :, None]

    def _mel_power(self, waveform: torch.Tensor) -> torch.Tensor:
        # Window and filterbank are made per call rather than held as buffers: they are tiny, and buffers computed
        # in __init__ break `from_pretrained`, which builds the model on the meta device.
        config = self.config
        window = torch.hann_window(config.n_fft, device=waveform.device)
        power = torchaudio.functional.spectrogram(
            waveform,
            pad=0,
            window=window,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            win_length=config.n_fft,
            power=2.0,
            normalized=False,
            center=False,
        )  # [batch, n_fft // 2 + 1, frames]
        filterbank = _mel_filterbank(config.n_fft // 2 + 1, config.n_mels, config.sampling_rate).to(waveform.device)
        return torch.matmul(power.transpose(-1, -2), filterbank).transpose(-1, -2)

    def _warp_frequencies(self, features: torch.Tensor) -> torch.Tensor:
        """Stretch each clip's mel axis by its own random factor, anchored at the lowest band (VTLP, Jaitly & Hinton,
        2013). Time is left untouched (the sampling grid is the identity along frames), so padding stays put."""
        batch, n_mels, frames = features.shape
        warp = self.config.frequency_warp
        factors = torch.empty(batch, device=features.device).uniform_(1.0 - warp, 1.0 + warp)
        # Band i of the output reads band i / factor of the input; grid_sample's coordinates run from -1 to 1.
        source = torch.arange(n_mels, device=features.device)[None, :] / factors[:, None]
        rows = (2.0 * source / (n_mels - 1) - 1.0)[:, :, None].expand(batch, n_mels, frames)
        columns = torch.linspace(-1.0, 1.0, frames, device=features.device)[None, None, :].expand_as(rows)
        grid = torch.stack([columns, rows], dim=-1)
        warped = torch.nn.functional.grid_sample(
            features[:, None], grid, mode="bilinear", padding_mode="border", align_corners=True
        )
        return warped[:, 0]

    def _spec_augment(self, features: torch.Tensor) -> torch.Tensor:
        """SpecAugment (Park et al., 2019): blank random spans of frames and of mel bands, per clip, in training."""
        config = self.config
        if config.frequency_warp:
            features = self._warp_frequencies(features)
        for _ in range(config.time_masks):
            features = torchaudio.functional.mask_along_axis_iid(features, config.time_mask_width, 0.0, axis=2)
        for _ in range(config.freq_masks):
            features = torchaudio.functional.mask_along_axis_iid(features, config.freq_mask_width, 0.0, axis=1)
        return features

    def _get_feat_extract_output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """Number of output frames for clips of `input_lengths` samples (same name as transformers' encoders)."""
        frames = torch.div(input_lengths - self.config.n_fft, self.config.hop_length, rounding_mode="floor") + 1
        frames = frames.clamp(min=0)
        for _ in self.conv_blocks:
            frames = torch.div(frames + 1, 2, rounding_mode="floor")
        return frames

    def _get_feature_vector_attention_mask(self, num_frames: int, attention_mask: torch.Tensor) -> torch.Tensor:
        """Boolean frame mask of the encoder's output, from the sample-level `attention_mask`."""
        lengths = self._get_feat_extract_output_lengths(attention_mask.sum(-1))
        return lengths_to_mask(lengths, num_frames)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_values, dtype=torch.long)
        sample_lengths = attention_mask.sum(-1)
        # The mel filterbank runs in float32 even under autocast: log of tiny half-precision powers underflows.
        with torch.autocast(device_type=input_values.device.type, enabled=False):
            mel = self._mel_power(input_values.float())  # [batch, n_mels, frames]
            if self.training and self.config.random_lowpass:
                mel = self._random_lowpass(mel)
            features = torch.log(mel + 1e-6)
        frames = torch.div(sample_lengths - self.config.n_fft, self.config.hop_length, rounding_mode="floor") + 1
        frame_mask = lengths_to_mask(frames.clamp(min=0), features.shape[-1])
        # Statistics over the clip's own frames only (see `SpectrogramCNNConfig.normalization`).
        valid = frame_mask[:, None, :]
        if self.config.normalization == "band":
            # Only the mean per band: dividing each band by its own spread too would blow a band a microphone
            # barely picks up (its noise floor) up to the size of the bands that carry the speech.
            features = features - masked_mean(features, valid, dim=-1)
        if self.config.normalization != "none":
            features = masked_normalize(features, valid, dim=(-2, -1))
        features = features * valid
        if self.training:
            features = self._spec_augment(features)
        hidden = features[:, None].to(self.projection.weight.dtype)  # [batch, 1, n_mels, frames]

        for block in self.conv_blocks:
            hidden = block(hidden, frame_mask)
            frames = torch.div(frames + 1, 2, rounding_mode="floor")
            frame_mask = lengths_to_mask(frames, hidden.shape[-1])

        batch, channels, mel_bins, num_frames = hidden.shape
        hidden = hidden.permute(0, 3, 1, 2).reshape(batch, num_frames, channels * mel_bins)
        hidden = self.projection(hidden) * frame_mask[..., None]
        all_hidden = [hidden]
        for layer in self.attention_layers:
            hidden = layer(hidden, src_key_padding_mask=~frame_mask) * frame_mask[..., None]
            all_hidden.append(hidden)
        return BaseModelOutput(
            last_hidden_state=hidden, hidden_states=tuple(all_hidden) if output_hidden_states else None
        )
