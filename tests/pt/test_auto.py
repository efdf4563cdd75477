"""PyTorch Auto classes: every class of the three families resolves from a saved folder, keyword
arguments and config overrides pass through, `from_config` builds random weights, and the error
cases give their messages. (The table and the texts are tested once in tests/core/test_auto_dispatch.py.)"""

from __future__ import annotations

import pytest
import torch

import aviary.pt
from aviary import AutoConfig
from aviary.core.auto import AUTO_TASKS, model_class_name
from aviary.pt import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForNextSentencePrediction,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
)
from conftest import auto_pairs, auto_tiny_configs

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

CONFIGS = auto_tiny_configs()
PAIRS = auto_pairs("")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A backbone checkpoint per family (`AutoModel.from_config` + `save_pretrained`)."""
    root = tmp_path_factory.mktemp("auto")
    out = {}
    for model_type, config in CONFIGS.items():
        torch.manual_seed(0)
        AutoModel.from_config(config).save_pretrained(root / model_type)
        out[model_type] = root / model_type
    return out


@pytest.mark.parametrize(("auto_name", "model_type"), PAIRS)
def test_every_class_resolves_from_a_folder(folders, auto_name, model_type) -> None:
    auto = getattr(aviary.pt, auto_name)
    expected = getattr(aviary.pt, model_class_name(model_type, AUTO_TASKS[auto_name]))
    overrides = {}
    if auto_name == "AutoModelForCausalLM":
        # a causal LM needs a decoder config (the checkpoint is an encoder's): full attention
        overrides = {"is_decoder": True}
        if model_type != "bert":
            overrides["attention_type"] = "original_full"
    model = auto.from_pretrained(folders[model_type], **overrides)
    assert type(model) is expected
    assert not model.training  # from_pretrained's eval mode


def test_keyword_arguments_and_overrides_pass_through(folders) -> None:
    model, info = AutoModelForSequenceClassification.from_pretrained(
        folders["bert"],
        num_labels=3,
        problem_type="multi_label_classification",
        output_loading_info=True,
    )
    assert type(model) is aviary.pt.BertForSequenceClassification
    assert model.config.problem_type == "multi_label_classification"
    assert model.classifier.out_features == 3
    assert "classifier.weight" in info["newly_initialized_keys"]

    model = AutoModelForMaskedLM.from_pretrained(
        folders["big_bird"], attention_type="original_full", dtype=torch.float64
    )
    assert model.config.attention_type == "original_full"
    assert next(model.parameters()).dtype == torch.float64

    # the encoder checkpoint has no cross-attention: strict=False loads what it has
    model, info = AutoModelForCausalLM.from_pretrained(
        folders["bert"],
        is_decoder=True,
        add_cross_attention=True,
        strict=False,
        output_loading_info=True,
    )
    assert type(model) is aviary.pt.BertLMHeadModel and model.config.add_cross_attention
    assert "bert.encoder.layer.0.crossattention.self.query.weight" in info["missing_keys"]

    config = AutoConfig.from_pretrained(folders["bigbird_pegasus"], num_labels=4)
    model = AutoModelForSequenceClassification.from_pretrained(
        folders["bigbird_pegasus"], config=config
    )
    assert type(model) is aviary.pt.BigBirdPegasusForSequenceClassification
    assert model.config.num_labels == 4


def test_from_config_builds_random_weights() -> None:
    torch.manual_seed(0)
    model = AutoModelForQuestionAnswering.from_config(CONFIGS["big_bird"])
    assert type(model) is aviary.pt.BigBirdForQuestionAnswering
    out = model(torch.tensor([[5, 6, 7, 8]]))
    assert out.start_logits.shape == (1, 4)
    model = AutoModelForSeq2SeqLM.from_config(CONFIGS["bigbird_pegasus"])
    assert type(model) is aviary.pt.BigBirdPegasusForConditionalGeneration


def test_errors(folders) -> None:
    with pytest.raises(
        ValueError, match="AutoModelForSeq2SeqLM has no class for model_type='bert'"
    ):
        AutoModelForSeq2SeqLM.from_pretrained(folders["bert"])
    with pytest.raises(
        ValueError,
        match="AutoModelForNextSentencePrediction has no class for model_type='big_bird'",
    ):
        AutoModelForNextSentencePrediction.from_config(CONFIGS["big_bird"])
    with pytest.raises(FileNotFoundError, match="no config.json found"):
        AutoModel.from_pretrained(folders["bert"] / "missing")
    with pytest.raises(TypeError, match=r"AutoModel.from_pretrained\(folder\)"):
        AutoModel(CONFIGS["bert"])
