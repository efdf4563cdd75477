"""Flax Auto classes: every class of the three families resolves from a folder, keyword
arguments and config overrides pass through, `from_config` builds random weights, and the error
cases give their messages. (The table and the texts are tested once in tests/core/test_auto_dispatch.py.)"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import aviary.flax
from aviary import AutoConfig
from aviary.core.auto import AUTO_TASKS, model_class_name
from aviary.flax import (
    FlaxAutoModel,
    FlaxAutoModelForCausalLM,
    FlaxAutoModelForMaskedLM,
    FlaxAutoModelForNextSentencePrediction,
    FlaxAutoModelForQuestionAnswering,
    FlaxAutoModelForSeq2SeqLM,
    FlaxAutoModelForSequenceClassification,
)
from conftest import auto_pairs, auto_tiny_configs

pytestmark = [
    pytest.mark.flax,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

CONFIGS = auto_tiny_configs()
PAIRS = auto_pairs("Flax")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A folder per family: BERT's with a backbone checkpoint (`FlaxAutoModel.from_config` +
    `save_pretrained`); the others with their config only, enough to resolve a class. (Flax
    initialises parameters slowly, so only BERT's models are built and loaded here; PyTorch's
    and TF's tests load every family.)"""
    root = tmp_path_factory.mktemp("auto")
    out = {}
    for model_type, config in CONFIGS.items():
        config.save_pretrained(root / model_type)
        out[model_type] = root / model_type
    FlaxAutoModel.from_config(CONFIGS["bert"], seed=0).save_pretrained(out["bert"])
    return out


@pytest.mark.parametrize(("auto_name", "model_type"), PAIRS)
def test_every_class_resolves_from_a_folder(folders, auto_name, model_type) -> None:
    auto = getattr(aviary.flax, auto_name)
    expected = getattr(aviary.flax, model_class_name(model_type, AUTO_TASKS[auto_name[4:]], "flax"))
    assert auto.model_class(AutoConfig.from_pretrained(folders[model_type]).model_type) is expected
    # without parameters (`_do_init=False` passes through): the class, not its weights
    model = auto.from_config(CONFIGS[model_type], _do_init=False)
    assert type(model) is expected


def test_a_backbone_loads(folders) -> None:
    model = FlaxAutoModel.from_pretrained(folders["bert"])
    assert type(model) is aviary.flax.FlaxBertModel
    assert model(jnp.array([[5, 6, 7]])).last_hidden_state.shape == (1, 3, 32)


def test_keyword_arguments_and_overrides_pass_through(folders) -> None:
    model, info = FlaxAutoModelForSequenceClassification.from_pretrained(
        folders["bert"],
        num_labels=3,
        problem_type="multi_label_classification",
        dtype=jnp.bfloat16,
        output_loading_info=True,
    )
    assert type(model) is aviary.flax.FlaxBertForSequenceClassification
    assert model.config.problem_type == "multi_label_classification"
    assert model.dtype == jnp.bfloat16
    assert model.params["classifier"]["kernel"].shape == (32, 3)
    assert "classifier.weight" in info["newly_initialized_keys"]

    # config= picks the class; the encoder checkpoint has no cross-attention: strict=False
    config = AutoConfig.from_pretrained(folders["bert"], is_decoder=True, add_cross_attention=True)
    model, info = FlaxAutoModelForCausalLM.from_pretrained(
        folders["bert"], config=config, strict=False, output_loading_info=True
    )
    assert type(model) is aviary.flax.FlaxBertForCausalLM and model.config.add_cross_attention
    assert "bert.encoder.layer.0.crossattention.self.query.weight" in info["missing_keys"]

    model = FlaxAutoModelForMaskedLM.from_config(
        CONFIGS["big_bird"].copy(attention_type="original_full"), _do_init=False
    )
    assert model.config.attention_type == "original_full"


def test_from_config_builds_random_weights() -> None:
    model = FlaxAutoModelForQuestionAnswering.from_config(CONFIGS["big_bird"], seed=0)
    assert type(model) is aviary.flax.FlaxBigBirdForQuestionAnswering
    kernel = np.asarray(model.params["qa_classifier"]["qa_outputs"]["kernel"])
    assert kernel.shape == (32, 2) and np.isfinite(kernel).all() and kernel.std() > 0


def test_errors(folders) -> None:
    with pytest.raises(
        ValueError, match="FlaxAutoModelForSeq2SeqLM has no class for model_type='bert'"
    ):
        FlaxAutoModelForSeq2SeqLM.from_pretrained(folders["bert"])
    with pytest.raises(
        ValueError,
        match="FlaxAutoModelForNextSentencePrediction has no class for model_type='big_bird'",
    ):
        FlaxAutoModelForNextSentencePrediction.from_config(CONFIGS["big_bird"])
    with pytest.raises(FileNotFoundError, match="no config.json found"):
        FlaxAutoModel.from_pretrained(folders["bert"] / "missing")
    with pytest.raises(TypeError, match=r"FlaxAutoModel.from_pretrained\(folder\)"):
        FlaxAutoModel(CONFIGS["bert"])
