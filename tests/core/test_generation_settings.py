"""`resolve_generation_settings` and `GenerationConfigMixin`: the framework-neutral start of every
framework's `generate` (settings of one call; generation_config.json with a checkpoint)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest

from aviary.core.generation import (
    GENERATION_CONFIG_NAME,
    GENERATION_DEFAULTS,
    GenerationConfig,
    GenerationConfigMixin,
    resolve_generation_settings,
)


def test_call_over_given_config_over_model_config_over_defaults():
    model_settings = GenerationConfig.from_model_config(
        SimpleNamespace(num_beams=5, length_penalty=0.8, eos_token_id=1, pad_token_id=None)
    )
    gen = resolve_generation_settings(model_settings, num_beams=3, max_length=None)
    assert (gen.num_beams, gen.length_penalty, gen.max_length) == (3, 0.8, 20)
    assert gen.pad_token_id == 1  # the first end-of-sequence id, as the reference
    given = GenerationConfig(num_beams=2, eos_token_id=[4, 6])
    gen = resolve_generation_settings(model_settings, given, max_new_tokens=4)
    assert (gen.num_beams, gen.length_penalty, gen.max_new_tokens) == (2, 1.0, 4)
    assert (gen.eos_token_ids, gen.pad_token_id) == ((4, 6), 4)
    # The model's own settings are not changed by a call.
    assert model_settings.num_beams == 5 and model_settings.max_new_tokens is None


def test_unknown_and_invalid_settings():
    base = GenerationConfig()
    with pytest.raises(TypeError, match="unknown settings: no_repeat_ngram_size"):
        resolve_generation_settings(base, no_repeat_ngram_size=3)
    with pytest.raises(ValueError, match="sampling"):
        resolve_generation_settings(base, do_sample=True)
    with pytest.raises(ValueError, match="num_return_sequences=3 is more than num_beams=2"):
        resolve_generation_settings(base, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="max_new_tokens must be a positive integer"):
        resolve_generation_settings(base, max_new_tokens=0)
    with pytest.raises(ValueError, match="early_stopping"):
        resolve_generation_settings(base, early_stopping="sometimes")
    assert set(GENERATION_DEFAULTS) >= {"max_new_tokens", "num_beams", "decoder_start_token_id"}


def generate(model_settings, **settings):
    """Stands for a framework's `generate`: the warning must point at its caller."""
    return resolve_generation_settings(model_settings, **settings)


def test_unsupported_setting_warns_at_the_caller_of_generate():
    model_settings = GenerationConfig.from_model_config(SimpleNamespace(no_repeat_ngram_size=3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generate(model_settings)
    assert len(caught) == 1
    assert "no_repeat_ngram_size=3 is not implemented by aviary" in str(caught[0].message)
    assert caught[0].filename == __file__


class FakePretrained:
    """A framework base class: `from_pretrained` returns the model, `save_pretrained` the folder."""

    def __init__(self):
        self.generation_config = GenerationConfig(num_beams=4)

    @classmethod
    def from_pretrained(cls, folder, *args, **kwargs):
        return cls()

    def save_pretrained(self, folder, *args, **kwargs):
        return folder


class FakeModel(GenerationConfigMixin, FakePretrained):
    pass


def test_generation_config_travels_with_the_checkpoint(tmp_path):
    model = FakeModel()
    model.generation_config = GenerationConfig(num_beams=3, max_length=12)
    assert model.save_pretrained(tmp_path) == tmp_path
    assert (tmp_path / GENERATION_CONFIG_NAME).is_file()
    assert FakeModel.from_pretrained(tmp_path).generation_config == model.generation_config
    # Without the file the model keeps the settings built from its config.
    assert FakeModel.from_pretrained(tmp_path / "empty").generation_config.num_beams == 4
