"""TF Auto classes: every class of the three families resolves from a saved folder, keyword
arguments and config overrides pass through, `from_config` builds random weights, and the error
cases give their messages. (The table and the texts are tested once in tests/core/test_auto_dispatch.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import aviary.tf
from aviary import AutoConfig
from aviary.core.auto import AUTO_TASKS, model_class_name
from aviary.tf import (
    TFAutoModel,
    TFAutoModelForCausalLM,
    TFAutoModelForMaskedLM,
    TFAutoModelForNextSentencePrediction,
    TFAutoModelForQuestionAnswering,
    TFAutoModelForSeq2SeqLM,
    TFAutoModelForSequenceClassification,
)
from conftest import auto_pairs, auto_tiny_configs

pytestmark = [
    pytest.mark.tf,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

CONFIGS = auto_tiny_configs()
PAIRS = auto_pairs("TF")
# Loaded in full (building a Keras model runs it once): one per family and a few heads.
LOADED = {
    ("TFAutoModel", "bert"),
    ("TFAutoModelForTokenClassification", "big_bird"),
    ("TFAutoModelForCausalLM", "bigbird_pegasus"),
    ("TFAutoModelForPreTraining", "bert"),
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A backbone checkpoint per family (`TFAutoModel.from_config` + `save_pretrained`)."""
    root = tmp_path_factory.mktemp("auto")
    out = {}
    for model_type, config in CONFIGS.items():
        tf.random.set_seed(0)
        TFAutoModel.from_config(config).save_pretrained(root / model_type)
        out[model_type] = root / model_type
    return out


@pytest.mark.parametrize(("auto_name", "model_type"), PAIRS)
def test_every_class_resolves_from_a_folder(folders, auto_name, model_type) -> None:
    auto = getattr(aviary.tf, auto_name)
    expected = getattr(aviary.tf, model_class_name(model_type, AUTO_TASKS[auto_name[2:]], "tf"))
    folder = folders[model_type]
    assert auto.model_class(AutoConfig.from_pretrained(folder).model_type) is expected
    if (auto_name, model_type) in LOADED:
        overrides = {}
        if auto_name == "TFAutoModelForCausalLM":
            # a causal LM needs a decoder config (the checkpoint is an encoder's)
            overrides = {"is_decoder": True}
            if model_type != "bert":
                overrides["attention_type"] = "original_full"
        assert type(auto.from_pretrained(folder, **overrides)) is expected


def test_keyword_arguments_and_overrides_pass_through(folders) -> None:
    model, info = TFAutoModelForSequenceClassification.from_pretrained(
        folders["bert"],
        num_labels=3,
        problem_type="multi_label_classification",
        output_loading_info=True,
    )
    assert type(model) is aviary.tf.TFBertForSequenceClassification
    assert model.config.problem_type == "multi_label_classification"
    assert model(tf.constant([[5, 6, 7]])).logits.shape == (1, 3)
    assert "classifier.weight" in info["newly_initialized_keys"]

    model = TFAutoModelForMaskedLM.from_pretrained(
        folders["big_bird"], attention_type="original_full"
    )
    assert model.config.attention_type == "original_full"

    # the encoder checkpoint has no cross-attention: strict=False loads what it has
    model, info = TFAutoModelForCausalLM.from_pretrained(
        folders["bert"],
        is_decoder=True,
        add_cross_attention=True,
        strict=False,
        output_loading_info=True,
    )
    assert type(model) is aviary.tf.TFBertLMHeadModel and model.config.add_cross_attention
    assert "bert.encoder.layer.0.crossattention.self.query.weight" in info["missing_keys"]

    config = AutoConfig.from_pretrained(folders["bigbird_pegasus"], num_labels=4)
    model = TFAutoModelForSequenceClassification.from_pretrained(
        folders["bigbird_pegasus"], config=config
    )
    assert type(model) is aviary.tf.TFBigBirdPegasusForSequenceClassification
    assert model.config.num_labels == 4


def test_from_config_builds_random_weights() -> None:
    model = TFAutoModelForQuestionAnswering.from_config(CONFIGS["big_bird"])
    assert type(model) is aviary.tf.TFBigBirdForQuestionAnswering
    out = model(tf.constant([[5, 6, 7, 8]]))
    assert out.start_logits.shape == (1, 4)
    assert np.isfinite(out.start_logits.numpy()).all()
    model = TFAutoModelForSeq2SeqLM.from_config(CONFIGS["bigbird_pegasus"])
    assert type(model) is aviary.tf.TFBigBirdPegasusForConditionalGeneration


def test_errors(folders) -> None:
    with pytest.raises(
        ValueError, match="TFAutoModelForSeq2SeqLM has no class for model_type='bert'"
    ):
        TFAutoModelForSeq2SeqLM.from_pretrained(folders["bert"])
    with pytest.raises(
        ValueError,
        match="TFAutoModelForNextSentencePrediction has no class for model_type='big_bird'",
    ):
        TFAutoModelForNextSentencePrediction.from_config(CONFIGS["big_bird"])
    with pytest.raises(FileNotFoundError, match="no config.json found"):
        TFAutoModel.from_pretrained(folders["bert"] / "missing")
    with pytest.raises(TypeError, match=r"TFAutoModel.from_pretrained\(folder\)"):
        TFAutoModel(CONFIGS["bert"])
