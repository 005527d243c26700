"""Models: the fused audio+text classifier and the from-scratch spectrogram encoder."""

from .audio_text import AudioTextClassifierOutput, AudioTextForSequenceClassification
from .spectrogram_cnn import SpectrogramCNNModel

__all__ = ["AudioTextClassifierOutput", "AudioTextForSequenceClassification", "SpectrogramCNNModel"]
