"""mmclassify: classify audio together with its text (transcripts, metadata) with transformers models."""

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoProcessor

from .configuration import AudioTextConfig, SpectrogramCNNConfig
from .modeling import AudioTextForSequenceClassification, SpectrogramCNNModel
from .pipeline import TASK as PIPELINE_TASK
from .pipeline import AudioTextClassificationPipeline, register_pipeline
from .processing import AudioTextProcessor

__version__ = "0.1.0"

# Registered on import, so the Auto classes load any folder that mmclassify saved. (The spectrogram CNN registers
# itself where the model code uses it: configuration.py and modeling/audio_text.py.)
AutoConfig.register(AudioTextConfig.model_type, AudioTextConfig, exist_ok=True)
AutoModelForSequenceClassification.register(AudioTextConfig, AudioTextForSequenceClassification, exist_ok=True)
AutoProcessor.register(AudioTextConfig, AudioTextProcessor, exist_ok=True)
# ... and `pipeline("audio-text-classification", model=...)` works.
register_pipeline()

__all__ = [
    "PIPELINE_TASK",
    "AudioTextClassificationPipeline",
    "AudioTextConfig",
    "AudioTextForSequenceClassification",
    "AudioTextProcessor",
    "SpectrogramCNNConfig",
    "SpectrogramCNNModel",
]
