"""Configs: defaults from the seed docs, config.json round trips, unknown keys kept, validation."""

from __future__ import annotations

import json

import pytest

from aviary import BertConfig, BigBirdConfig, BigBirdPegasusConfig, load_config


def test_bert_defaults_match_seed_inventory() -> None:
    c = BertConfig()
    expected = dict(
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=512,
        type_vocab_size=2,
        initializer_range=0.02,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        position_embedding_type="absolute",
        use_cache=True,
        classifier_dropout=None,
        is_decoder=False,
    )
    assert {k: getattr(c, k) for k in expected} == expected
    assert c.num_labels == 2 and c.use_return_dict and c.tie_word_embeddings
    assert c.model_type == "bert"


def test_big_bird_defaults_match_seed_inventory() -> None:
    c = BigBirdConfig()
    expected = dict(
        vocab_size=50358,
        hidden_act="gelu_new",
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        sep_token_id=66,
        attention_type="block_sparse",
        use_bias=True,
        rescale_embeddings=False,
        block_size=64,
        num_random_blocks=3,
        classifier_dropout=None,
    )
    assert {k: getattr(c, k) for k in expected} == expected
    assert not hasattr(c, "position_embedding_type")


def test_big_bird_pegasus_defaults_and_aliases() -> None:
    c = BigBirdPegasusConfig()
    expected = dict(
        vocab_size=96103,
        d_model=1024,
        encoder_layers=16,
        decoder_layers=16,
        encoder_attention_heads=16,
        decoder_attention_heads=16,
        decoder_ffn_dim=4096,
        encoder_ffn_dim=4096,
        activation_function="gelu_new",
        dropout=0.1,
        attention_dropout=0.0,
        activation_dropout=0.0,
        classifier_dropout=0.0,
        max_position_embeddings=4096,
        init_std=0.02,
        encoder_layerdrop=0.0,
        decoder_layerdrop=0.0,
        use_cache=True,
        attention_type="block_sparse",
        use_bias=False,
        block_size=64,
        num_random_blocks=3,
        scale_embedding=True,
        is_encoder_decoder=True,
    )
    assert {k: getattr(c, k) for k in expected} == expected
    # The reference's alternative names read and write the same fields.
    assert c.hidden_size == 1024 and c.num_attention_heads == 16 and c.num_hidden_layers == 16
    c2 = BigBirdPegasusConfig(hidden_size=64, num_attention_heads=4, scale_embeddings=False)
    assert c2.d_model == 64 and c2.encoder_attention_heads == 4 and c2.scale_embedding is False


@pytest.mark.parametrize(
    "folder", ["bert-seqcls-multi", "bigbird-qa", "pegasus-conditional-generation"]
)
def test_reference_config_json_round_trips(folder, tmp_path) -> None:
    from conftest import GOLDENS

    original = json.loads((GOLDENS / folder / "config.json").read_text())
    config = load_config(GOLDENS / folder)
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    # Every key of the reference file comes back with the same value.
    for key, value in original.items():
        assert written[key] == value, key
    assert load_config(tmp_path) == config


def test_unknown_keys_are_kept(tmp_path) -> None:
    config = BertConfig(
        hidden_size=32, num_attention_heads=4, gradient_checkpointing=False, _name_or_path="x"
    )
    assert config.gradient_checkpointing is False
    config.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["gradient_checkpointing"] is False and data["_name_or_path"] == "x"
    assert BertConfig.from_pretrained(tmp_path).gradient_checkpointing is False


def test_labels() -> None:
    c = BertConfig(num_labels=3)
    assert c.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert c.label2id == {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}
    c = BertConfig(id2label={"0": "neg", "1": "pos"})
    assert c.num_labels == 2 and c.id2label[1] == "pos" and c.label2id["neg"] == 0
    c.num_labels = 5
    assert len(c.id2label) == 5
    with pytest.raises(ValueError, match="num_labels"):
        BertConfig(num_labels=3, id2label={0: "a"})


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (BertConfig, {"hidden_size": 30, "num_attention_heads": 4}, "hidden_size"),
        (BertConfig, {"hidden_act": "gelu_wrong"}, "hidden_act"),
        (BertConfig, {"position_embedding_type": "rotary"}, "position_embedding_type"),
        (BertConfig, {"vocab_size": 0}, "vocab_size"),
        (BertConfig, {"num_hidden_layers": -1}, "num_hidden_layers"),
        (BertConfig, {"hidden_dropout_prob": 1.5}, "hidden_dropout_prob"),
        (BertConfig, {"problem_type": "ranking"}, "problem_type"),
        (BigBirdConfig, {"attention_type": "sparse"}, "attention_type"),
        (BigBirdConfig, {"block_size": 0}, "block_size"),
        (BigBirdConfig, {"num_random_blocks": 0}, "num_random_blocks"),
        (BigBirdPegasusConfig, {"d_model": 30, "encoder_attention_heads": 4}, "d_model"),
        (BigBirdPegasusConfig, {"activation_function": "nope"}, "activation_function"),
        (BigBirdPegasusConfig, {"decoder_layers": 0}, "decoder_layers"),
    ],
)
def test_invalid_values_name_the_field(cls, kwargs, field) -> None:
    with pytest.raises(ValueError, match=field):
        cls(**kwargs)


def test_wrong_model_type_and_bad_files(tmp_path) -> None:
    BigBirdConfig().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type"):
        BertConfig.from_pretrained(tmp_path)
    assert isinstance(load_config(tmp_path), BigBirdConfig)
    with pytest.raises(FileNotFoundError, match="config.json"):
        BertConfig.from_pretrained(tmp_path / "missing")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config(tmp_path)


def test_interrupted_write_leaves_target_untouched(tmp_path) -> None:
    from aviary.core.io import atomic_path

    target = tmp_path / "config.json"
    BertConfig(hidden_size=32, num_attention_heads=4).save_pretrained(tmp_path)
    before = target.read_text()
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"half": ')
        raise RuntimeError("interrupted")
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
