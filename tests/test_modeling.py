"""The fused audio+text classifier: saving and loading, padding invariance, fusion variants, freezing, labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_WIDTH, noise, tiny_audio_text_config, tiny_cnn_config, tiny_wav2vec2_group_config
from huggingface_hub.errors import StrictDataclassClassValidationError
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoProcessor, AutoTokenizer, Wav2Vec2Model
from transformers.models.data2vec.modeling_data2vec_audio import Data2VecAudioPositionalConvEmbedding

import mmclassify  # noqa: F401  (registers the Auto classes)
from mmclassify import AudioTextConfig, AudioTextForSequenceClassification, AudioTextProcessor
from mmclassify.modeling import SpectrogramCNNModel
from mmclassify.modeling.audio_encoding import MaskedGroupNorm, MaskedPositionalConvEmbedding

BATCH_TOLERANCE = 1e-4  # float32, eval mode

SHORT_CLIP, LONG_CLIP = noise(3000, seed=1), noise(7000, seed=2)
SHORT_TEXT, LONG_TEXT = "kids are", "dogs are sitting by the door"


def logits_of(model, processor, clips, texts) -> torch.Tensor:
    with torch.no_grad():
        return model(**processor(audio=clips, text=texts, sampling_rate=16000)).logits


def batch_invariance_gap(model, processor) -> float:
    """Max |logits of the short clip alone - its logits in a batch padded to a longer clip|."""
    alone = logits_of(model, processor, [SHORT_CLIP], [SHORT_TEXT])[0]
    batched = logits_of(model, processor, [SHORT_CLIP, LONG_CLIP], [SHORT_TEXT, LONG_TEXT])[0]
    assert alone.abs().max() > 0.1, "logits too small for the tolerance to mean anything"
    return (alone - batched).abs().max().item()


def padded_batch(processor):
    inputs = processor(audio=[SHORT_CLIP, LONG_CLIP], text=[SHORT_TEXT, LONG_TEXT], sampling_rate=16000)
    assert (inputs["attention_mask"] == 0).any() and (inputs["text_attention_mask"] == 0).any()
    return inputs


def trainable(module: nn.Module) -> list[bool]:
    return [parameter.requires_grad for parameter in module.parameters()]


# --- saving and loading ---------------------------------------------------------------------------------------


def test_save_and_load_round_trip_gives_identical_logits(make_model, processor, any_audio_config, tmp_path):
    model = make_model(any_audio_config)
    model.save_pretrained(tmp_path)

    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    reloaded, loading_info = AudioTextForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(loading_info.values()), loading_info  # no missing, unexpected or mismatched weights
    reloaded.eval()
    assert type(reloaded.audio_encoder) is type(model.audio_encoder)
    inputs = padded_batch(processor)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)


def test_auto_classes_load_a_saved_folder(make_model, processor, tmp_path):
    model = make_model(id2label={0: "angry", 1: "calm", 2: "happy"})
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)

    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, AudioTextConfig)
    assert config.id2label == {0: "angry", 1: "calm", 2: "happy"}
    auto_model = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(auto_model, AudioTextForSequenceClassification)
    auto_processor = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(auto_processor, AudioTextProcessor)

    inputs = auto_processor(audio=[SHORT_CLIP], text=[SHORT_TEXT], sampling_rate=16000)
    with torch.no_grad():
        torch.testing.assert_close(auto_model(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)


# --- padding never changes a clip's result --------------------------------------------------------------------


def test_values_in_the_padding_change_no_logits(make_model, processor, any_audio_config):
    model = make_model(any_audio_config)
    inputs = padded_batch(processor)
    with torch.no_grad():
        expected = model(**inputs).logits

    padded_samples = inputs["attention_mask"] == 0
    inputs["input_values"][padded_samples] = torch.randn(int(padded_samples.sum())) * 10
    padded_tokens = inputs["text_attention_mask"] == 0
    inputs["input_ids"][padded_tokens] = torch.randint(
        5, model.config.text_config.vocab_size, (int(padded_tokens.sum()),)
    )
    with torch.no_grad():
        changed = model(**inputs).logits

    torch.testing.assert_close(changed, expected, rtol=0, atol=1e-5)


def test_a_clip_gets_the_same_logits_alone_and_in_a_padded_batch(make_model, processor, any_audio_config):
    model = make_model(any_audio_config)
    assert batch_invariance_gap(model, processor) <= BATCH_TOLERANCE


def test_stock_group_norm_breaks_batch_invariance(make_model, processor):
    """The check above can fail: with torch's own GroupNorm (statistics over the padding too) the gap is large."""
    model = make_model(tiny_wav2vec2_group_config())
    assert batch_invariance_gap(model, processor) <= BATCH_TOLERANCE

    first_conv = model.audio_encoder.feature_extractor.conv_layers[0]
    masked = first_conv.layer_norm
    stock = nn.GroupNorm(masked.num_groups, masked.num_channels, eps=masked.eps, affine=True)
    stock.load_state_dict(masked.state_dict())
    first_conv.layer_norm = stock

    assert batch_invariance_gap(model, processor) > BATCH_TOLERANCE


def test_stock_data2vec_positional_convolutions_break_batch_invariance(make_model, processor, data2vec_audio_config):
    """data2vec-audio's stacked positional convolutions read the padding unless it is zeroed after each one."""
    model = make_model(data2vec_audio_config)
    assert isinstance(model.audio_encoder.encoder.pos_conv_embed, MaskedPositionalConvEmbedding)
    assert batch_invariance_gap(model, processor) <= BATCH_TOLERANCE

    stock = Data2VecAudioPositionalConvEmbedding(model.config.audio_config)
    stock.layers = model.audio_encoder.encoder.pos_conv_embed.layers
    model.audio_encoder.encoder.pos_conv_embed = stock

    assert batch_invariance_gap(model, processor) > BATCH_TOLERANCE


# --- fusion variants and single-modality ablations ------------------------------------------------------------

MODULES_BY_MODALITIES = {
    "audio+text": {"audio_encoder", "audio_projection", "text_encoder", "text_projection"},
    "audio": {"audio_encoder", "audio_projection"},
    "text": {"text_encoder", "text_projection"},
}
ALL_MODALITY_MODULES = MODULES_BY_MODALITIES["audio+text"]


@pytest.mark.parametrize("fusion", ["cross_attention", "concat"])
@pytest.mark.parametrize("modalities", ["audio+text", "audio", "text"])
def test_fusion_and_ablations_give_one_row_of_logits_per_example(make_model, processor, fusion, modalities):
    model = make_model(fusion=fusion, modalities=modalities, num_labels=5)

    present = {name for name in ALL_MODALITY_MODULES if hasattr(model, name)}
    assert present == MODULES_BY_MODALITIES[modalities]
    assert hasattr(model, "fusion_blocks") == (fusion == "cross_attention" and modalities == "audio+text")
    expected_classifier_inputs = TINY_WIDTH * (2 if modalities == "audio+text" else 1)
    assert model.classifier[1].in_features == expected_classifier_inputs

    audio = [SHORT_CLIP, LONG_CLIP, SHORT_CLIP] if modalities != "text" else None
    text = [SHORT_TEXT, LONG_TEXT, ""] if modalities != "audio" else None
    with torch.no_grad():
        logits = model(**processor(audio=audio, text=text, sampling_rate=16000)).logits
    assert logits.shape == (3, 5)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(("modalities", "missing"), [("audio", "input_values"), ("text", "input_ids")])
def test_a_model_without_its_modality_input_says_which_is_missing(make_model, processor, modalities, missing):
    model = make_model(modalities=modalities)
    other_input = (
        processor(text=[SHORT_TEXT]) if modalities == "audio" else processor(audio=[SHORT_CLIP], sampling_rate=16000)
    )
    with pytest.raises(ValueError, match=missing):
        model(**other_input)


# --- attention weights ----------------------------------------------------------------------------------------


def test_output_attentions_returns_per_block_weights_that_ignore_padding(make_model, processor):
    model = make_model(tiny_wav2vec2_group_config(), fusion_num_layers=2, fusion_num_attention_heads=4)
    inputs = padded_batch(processor)
    with torch.no_grad():
        plain = model(**inputs)
        out = model(**inputs, output_attentions=True)

    torch.testing.assert_close(out.logits, plain.logits, rtol=0, atol=1e-5)  # explicit attention == SDPA
    frame_mask, token_mask = out.audio_frame_mask, inputs["text_attention_mask"].bool()
    batch, frames = frame_mask.shape
    tokens = token_mask.shape[1]
    assert not frame_mask[0].all() and frame_mask[1].all()  # the short clip's frames are padded

    assert len(out.audio_to_text_attentions) == len(out.text_to_audio_attentions) == 2
    for audio_to_text, text_to_audio in zip(out.audio_to_text_attentions, out.text_to_audio_attentions, strict=True):
        assert audio_to_text.shape == (batch, 4, frames, tokens)
        assert text_to_audio.shape == (batch, 4, tokens, frames)
        for weights, key_mask in [(audio_to_text, token_mask), (text_to_audio, frame_mask)]:
            # Part of each query's unit of attention may go to the learned null key, which is not returned.
            assert (weights.sum(-1) <= 1 + 1e-5).all()
            keys_first = weights.permute(0, 1, 3, 2)  # [batch, heads, keys, queries]
            assert (keys_first[~key_mask[:, None, :].expand(-1, 4, -1)] == 0).all()
            assert (keys_first[key_mask[:, None, :].expand(-1, 4, -1)] > 0).all()


def test_no_attentions_are_returned_unless_asked(make_model, processor):
    with torch.no_grad():
        out = make_model()(**padded_batch(processor))
    assert out.audio_to_text_attentions is None and out.text_to_audio_attentions is None


@pytest.mark.parametrize("linear_classifier", [True, False])
def test_linear_classifier_keeps_concat_additive_in_the_modalities(make_model, processor, linear_classifier, tmp_path):
    # One linear layer after the concatenation makes the logits an audio part plus a text part: the modalities cannot
    # interact, as the concat ablation of a match task must show. The two-layer head can make them interact.
    model = make_model(fusion="concat", linear_classifier=linear_classifier, num_labels=2)
    assert sum(isinstance(m, nn.Linear) for m in model.classifier) == (1 if linear_classifier else 2)
    with torch.no_grad():
        for linear in (m for m in model.classifier if isinstance(m, nn.Linear)):
            linear.weight.normal_(std=0.5)  # away from the near-linear start of a freshly initialised GELU head
    audio = [SHORT_CLIP, LONG_CLIP, SHORT_CLIP, LONG_CLIP]
    text = [SHORT_TEXT, SHORT_TEXT, LONG_TEXT, LONG_TEXT]
    with torch.no_grad():
        logits = model(**processor(audio=audio, text=text, sampling_rate=16000)).logits
    interaction = (logits[0] + logits[3] - logits[1] - logits[2]).abs().max().item()
    assert interaction < 1e-4 if linear_classifier else interaction > 1e-2

    model.save_pretrained(tmp_path)
    reloaded = AudioTextForSequenceClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.linear_classifier == linear_classifier
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**processor(audio=audio, text=text, sampling_rate=16000)).logits, logits)


# --- weighted layer sum ---------------------------------------------------------------------------------------


def test_weighted_layer_sum_on_the_last_layer_equals_the_plain_model(make_model, processor, wav2vec2_group_config):
    plain = make_model(wav2vec2_group_config)
    weighted = make_model(wav2vec2_group_config, use_weighted_layer_sum=True)
    num_layers = wav2vec2_group_config.num_hidden_layers + 1
    assert weighted.layer_weights.shape == (num_layers,)
    missing, unexpected = weighted.load_state_dict(plain.state_dict(), strict=False)
    assert missing == ["layer_weights"] and not unexpected
    inputs = padded_batch(processor)

    with torch.no_grad():
        weighted.layer_weights.copy_(torch.tensor([-1e4] * (num_layers - 1) + [0.0]))  # softmax -> last layer only
        torch.testing.assert_close(weighted(**inputs).logits, plain(**inputs).logits, rtol=0, atol=1e-5)
        weighted.layer_weights.fill_(1.0 / num_layers)  # uniform mix of all layers: a different result
        assert (weighted(**inputs).logits - plain(**inputs).logits).abs().max() > 1e-3

    loss = weighted(**inputs, labels=torch.tensor([0, 2])).loss
    loss.backward()
    assert weighted.layer_weights.grad is not None and weighted.layer_weights.grad.abs().sum() > 0


def test_weighted_layer_sum_turns_layerdrop_off_so_every_layer_is_there_to_sum(make_model, processor, tmp_path):
    audio_config = tiny_wav2vec2_group_config()
    audio_config.layerdrop = 0.9  # nearly every layer skipped in training: there would be no hidden states to stack
    model = make_model(audio_config, use_weighted_layer_sum=True).train()
    assert model.config.audio_config.layerdrop == 0.0 and model.audio_encoder.config.layerdrop == 0.0
    inputs = padded_batch(processor)
    for _ in range(3):
        model(**inputs, labels=torch.tensor([0, 2])).loss.backward()
    assert model.layer_weights.grad is not None
    model.save_pretrained(tmp_path)
    assert AudioTextConfig.from_pretrained(tmp_path).audio_config.layerdrop == 0.0


# --- freezing -------------------------------------------------------------------------------------------------


def test_feature_encoder_is_frozen_by_default_also_after_loading(make_model, wav2vec2_group_config, tmp_path):
    model = make_model(wav2vec2_group_config)
    model.save_pretrained(tmp_path)
    reloaded = AudioTextForSequenceClassification.from_pretrained(tmp_path)

    for candidate in (model, reloaded):
        assert not any(trainable(candidate.audio_encoder.feature_extractor))
        assert all(trainable(candidate.audio_encoder.encoder))
        assert all(trainable(candidate.text_encoder)) and all(trainable(candidate.fusion_blocks))


def test_feature_encoder_can_be_left_trainable(make_model, wav2vec2_group_config):
    model = make_model(wav2vec2_group_config, freeze_feature_encoder=False)
    assert all(trainable(model.audio_encoder))


@pytest.mark.parametrize("frozen", ["audio_encoder", "text_encoder"])
def test_freezing_an_encoder_freezes_all_of_it_and_nothing_else(make_model, wav2vec2_group_config, frozen, tmp_path):
    model = make_model(wav2vec2_group_config, freeze_feature_encoder=False, **{f"freeze_{frozen}": True})
    other = "text_encoder" if frozen == "audio_encoder" else "audio_encoder"
    assert not any(trainable(getattr(model, frozen)))
    assert all(trainable(getattr(model, other)))
    assert all(trainable(model.fusion_blocks)) and all(trainable(model.classifier))

    model.save_pretrained(tmp_path)  # the setting is part of the config, so it survives saving
    reloaded = AudioTextForSequenceClassification.from_pretrained(tmp_path)
    assert not any(trainable(getattr(reloaded, frozen)))


# --- labels and config validation -----------------------------------------------------------------------------


def test_loss_is_cross_entropy_of_the_logits(make_model, processor):
    model = make_model()
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        out = model(**padded_batch(processor), labels=labels)
    torch.testing.assert_close(out.loss, nn.functional.cross_entropy(out.logits, labels))


@pytest.mark.parametrize("bad_label", [3, 7, -1])
def test_labels_outside_the_classes_raise_naming_them(make_model, processor, bad_label):
    model = make_model(num_labels=3)
    with pytest.raises(ValueError, match=rf"labels \[{bad_label}\] are outside this model's 3 classes"):
        model(**padded_batch(processor), labels=torch.tensor([0, bad_label]))


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (dict(fusion="early"), "fusion must be one of .*'early'"),
        (dict(modalities="video"), "modalities must be one of .*'video'"),
        (dict(modalities="text+audio"), "modalities must be one of .*'text\\+audio'"),
        (dict(fusion_hidden_size=30, fusion_num_attention_heads=4), "must be divisible"),
    ],
)
def test_invalid_config_raises(setting, message):
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match=message):
        tiny_audio_text_config(**setting)


# --- pretrained encoders from local folders -------------------------------------------------------------------


def test_from_audio_text_pretrained_with_real_minilm_trains(minilm_dir, feature_extractor, tmp_path):
    torch.manual_seed(0)
    audio_dir = tmp_path / "tiny-wav2vec2"
    tiny_audio = Wav2Vec2Model(tiny_wav2vec2_group_config())
    tiny_audio.save_pretrained(audio_dir)

    model = AudioTextForSequenceClassification.from_audio_text_pretrained(
        str(audio_dir), str(minilm_dir), num_labels=2, fusion_hidden_size=32, fusion_num_attention_heads=2
    )

    # Both encoders hold the saved weights, and the audio front-end got the padding-invariant GroupNorm.
    minilm = load_file(minilm_dir / "model.safetensors")
    assert model.text_encoder.config.hidden_size == 384
    assert torch.equal(
        model.text_encoder.embeddings.word_embeddings.weight, minilm["embeddings.word_embeddings.weight"]
    )
    saved_audio = tiny_audio.state_dict()
    for name, parameter in model.audio_encoder.state_dict().items():
        assert torch.equal(parameter, saved_audio[name]), name
    assert isinstance(model.audio_encoder.feature_extractor.conv_layers[0].layer_norm, MaskedGroupNorm)

    processor = AudioTextProcessor(
        feature_extractor=feature_extractor, tokenizer=AutoTokenizer.from_pretrained(minilm_dir)
    )
    inputs = processor(
        audio=[noise(8000, seed=3), noise(6000, seed=4)],
        text=["kids are talking by the door", "dogs"],
        sampling_rate=16000,
    )
    assert inputs["input_ids"][0, 1].item() == processor.tokenizer.convert_tokens_to_ids("kids")

    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    loss = model(**inputs, labels=torch.tensor([0, 1])).loss
    loss.backward()
    optimizer.step()

    assert torch.isfinite(loss) and abs(loss.item() - np.log(2)) < 1.0
    changed = {name for name, parameter in model.named_parameters() if not torch.equal(parameter, before[name])}
    fusion_names = {name for name in before if name.startswith(("fusion_blocks.", "classifier.", "audio_projection."))}
    assert fusion_names and fusion_names <= changed
    frozen_front_end = {name for name in before if name.startswith("audio_encoder.feature_extractor.")}
    assert frozen_front_end and not frozen_front_end & changed


def test_spec_augment_masks_spans_in_training_only():
    config = tiny_cnn_config()
    config.time_masks, config.time_mask_width, config.freq_masks, config.freq_mask_width = 2, 5, 2, 4
    torch.manual_seed(0)
    model = SpectrogramCNNModel(config)
    waveform = torch.randn(4, 8000)
    features = torch.log(model._mel_power(waveform) + 1e-6)
    masked = model._spec_augment(features)
    blank_frames = (masked == 0).all(dim=1).sum(-1)  # frames blanked across every band
    blank_bands = (masked == 0).all(dim=2).sum(-1)
    assert (blank_frames <= 2 * 5).all() and (blank_bands <= 2 * 4).all() and (blank_frames + blank_bands).sum() > 0
    model.eval()
    assert torch.equal(model(waveform).last_hidden_state, model(waveform).last_hidden_state)  # no masking in eval
    model.train()
    torch.manual_seed(1)
    first = model(waveform).last_hidden_state
    torch.manual_seed(2)
    assert not torch.allclose(first, model(waveform).last_hidden_state)


def test_frequency_warp_stretches_each_clips_mel_axis_by_its_own_factor():
    config = tiny_cnn_config()
    config.frequency_warp = 0.2
    model = SpectrogramCNNModel(config)
    bands, frames = config.n_mels, 5
    ramp = torch.arange(bands, dtype=torch.float32)[None, :, None].expand(6, bands, frames).clone()
    ramp[:, :, -2:] = 0.0  # padded frames
    torch.manual_seed(0)
    warped = model._warp_frequencies(ramp)
    assert warped.shape == ramp.shape and torch.equal(warped[:, :, -2:], ramp[:, :, -2:])  # padding stays zero
    # Band i reads band i / factor: where that stays inside the axis, a ramp becomes a ramp of slope 1 / factor.
    slopes = warped[:, 1, 0] - warped[:, 0, 0]
    assert ((slopes > 1 / 1.2 - 1e-4) & (slopes < 1 / 0.8 + 1e-4)).all() and slopes.std() > 0.01
    inside = warped[:, : int(bands * 0.8), 0]
    assert torch.allclose(inside, torch.arange(inside.shape[1])[None, :] * slopes[:, None], atol=1e-4)
    # Anchored at the lowest band, frames untouched: each frame of a clip is warped alike.
    assert torch.allclose(warped[:, :, 0], warped[:, :, 2])


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (dict(normalization="utterance"), "normalization must be 'clip', 'band' or 'none'"),
        (dict(frequency_warp=1.0), "\\[0, 1\\)"),
        (dict(random_lowpass=1.5), "random_lowpass must be in \\[0, 1\\]"),
    ],
)
def test_invalid_spectrogram_settings_raise(setting, message):
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match=message):
        tiny_cnn_config(**setting)


def test_random_lowpass_attenuates_only_the_bands_above_each_clips_cutoff():
    model = SpectrogramCNNModel(tiny_cnn_config(random_lowpass=1.0))
    torch.manual_seed(0)
    mel = torch.ones(8, model.config.n_mels, 3)
    filtered = model._random_lowpass(mel)[:, :, 0]
    lowest = model.config.n_mels // 8
    assert torch.equal(filtered[:, :lowest], torch.ones(8, lowest))  # the cut-off is never below an eighth
    assert (filtered[:, 1:] <= filtered[:, :-1]).all() and (filtered[:, -1] < 0.5).all()  # falls above it
    assert filtered[:, -1].std() > 0  # each clip its own cut-off and roll-off
    half = SpectrogramCNNModel(tiny_cnn_config(random_lowpass=0.5))
    untouched = (half._random_lowpass(torch.ones(400, half.config.n_mels, 1))[:, -1, 0] == 1.0).float().mean()
    assert 0.4 < untouched < 0.6
