"""mmclassify: classify audio together with its text (transcripts, metadata) with transformers models."""

from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoProcessor

from .configuration import AudioTextConfig, SpectrogramCNNConfig
from .modeling import AudioTextForSequenceClassification, SpectrogramCNNModel
from .processing import AudioTextProcessor

__version__ = "0.1.0"

# Registered on import, so the Auto classes load any folder that mmclassify saved.
AutoConfig.register(SpectrogramCNNConfig.model_type, SpectrogramCNNConfig, exist_ok=True)
AutoConfig.register(AudioTextConfig.model_type, AudioTextConfig, exist_ok=True)
AutoModel.register(SpectrogramCNNConfig, SpectrogramCNNModel, exist_ok=True)
AutoModelForSequenceClassification.register(AudioTextConfig, AudioTextForSequenceClassification, exist_ok=True)
AutoProcessor.register(AudioTextConfig, AudioTextProcessor, exist_ok=True)

__all__ = [
    "AudioTextConfig",
    "AudioTextForSequenceClassification",
    "AudioTextProcessor",
    "SpectrogramCNNConfig",
    "SpectrogramCNNModel",
]
