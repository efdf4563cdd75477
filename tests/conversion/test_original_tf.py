"""Importing original Google TF checkpoints (BERT, BigBird, BigBird TriviaQA, BigBirdPegasus).

Each test starts from a golden's canonical tensors, writes them under the original variable names
and layouts into a real tf.train checkpoint (TF1 format, exact names, with optimizer slots and
`global_step` beside them), imports it, and checks that every tensor lands where it belongs,
bit-identical. The original-side names are written out here independently of the module's tables.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from aviary.conversion import CheckpointError, read_checkpoint
from aviary.conversion.original_tf import (
    FAMILIES,
    convert_original_tf,
    import_original_tf,
    is_optimizer_variable,
    original_config,
)
from aviary.core.configs import BigBirdConfig, BigBirdPegasusConfig, load_config
from conftest import GOLDENS

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf

HIDDEN, HEADS = 32, 4


def golden(name: str) -> dict[str, np.ndarray]:
    return read_checkpoint(GOLDENS / name)


def write_tf_checkpoint(prefix, variables: dict[str, np.ndarray]) -> str:
    """A TF1-style checkpoint holding exactly these variable names."""
    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[n]) for n in names],
    )
    assert sorted(n for n, _ in tf.train.list_variables(str(prefix))) == names
    return str(prefix)


def with_training_state(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add Adam slots for a few weights, the BERT optimizer's scope, and `global_step`."""
    out = dict(variables)
    for name in sorted(variables)[:3]:
        out[f"{name}/adam_m"] = np.full_like(variables[name], 7.0)
        out[f"{name}/adam_v"] = np.full_like(variables[name], 9.0)
    out["global_step"] = np.array(1000, dtype=np.int64)
    return out


def assert_same_tensors(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(actual) == set(expected), (
        f"missing {sorted(set(expected) - set(actual))}, extra {sorted(set(actual) - set(expected))}"
    )
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        assert np.array_equal(actual[name], value), name


# -- canonical -> original, written independently of the module's tables --------------------------


def encoder_layers_to_original(
    tensors: dict[str, np.ndarray], three_d: bool = False
) -> dict[str, np.ndarray]:
    """BERT-style encoder layers: `bert.encoder.layer.L.*` -> `bert/encoder/layer_L/*`."""
    out = {}
    head_dim = HIDDEN // HEADS
    for name, value in tensors.items():
        if not name.startswith("bert.encoder.layer."):
            continue
        layer, rest = name[len("bert.encoder.layer.") :].split(".", 1)
        module, leaf = rest.rsplit(".", 1)
        base = f"bert/encoder/layer_{layer}/{module.replace('.', '/')}"
        if "LayerNorm" in module:
            out[f"{base}/{'gamma' if leaf == 'weight' else 'beta'}"] = value
        elif leaf == "bias":
            if three_d and module.startswith("attention.self."):
                value = value.reshape(HEADS, head_dim)
            out[f"{base}/bias"] = value
        else:
            kernel = value.T  # [in, out]
            if three_d and module.startswith("attention.self."):
                kernel = kernel.reshape(HIDDEN, HEADS, head_dim)
            elif three_d and module == "attention.output.dense":
                kernel = kernel.reshape(HEADS, head_dim, HIDDEN)
            out[f"{base}/kernel"] = np.ascontiguousarray(kernel)
    return out


def pretraining_heads_to_original(t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "cls/predictions/output_bias": t["cls.predictions.bias"],
        "cls/predictions/transform/dense/kernel": t["cls.predictions.transform.dense.weight"].T,
        "cls/predictions/transform/dense/bias": t["cls.predictions.transform.dense.bias"],
        "cls/predictions/transform/LayerNorm/gamma": t[
            "cls.predictions.transform.LayerNorm.weight"
        ],
        "cls/predictions/transform/LayerNorm/beta": t["cls.predictions.transform.LayerNorm.bias"],
        "cls/seq_relationship/output_weights": t["cls.seq_relationship.weight"],  # not transposed
        "cls/seq_relationship/output_bias": t["cls.seq_relationship.bias"],
    }


def embeddings_to_original(
    t: dict[str, np.ndarray], layer_norm_scope: str
) -> dict[str, np.ndarray]:
    return {
        "bert/embeddings/word_embeddings": t["bert.embeddings.word_embeddings.weight"],
        "bert/embeddings/position_embeddings": t["bert.embeddings.position_embeddings.weight"],
        "bert/embeddings/token_type_embeddings": t["bert.embeddings.token_type_embeddings.weight"],
        f"{layer_norm_scope}/LayerNorm/gamma": t["bert.embeddings.LayerNorm.weight"],
        f"{layer_norm_scope}/LayerNorm/beta": t["bert.embeddings.LayerNorm.bias"],
    }


def bert_original(t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        **embeddings_to_original(t, "bert/embeddings"),
        **encoder_layers_to_original(t),
        "bert/pooler/dense/kernel": t["bert.pooler.dense.weight"].T,
        "bert/pooler/dense/bias": t["bert.pooler.dense.bias"],
        **pretraining_heads_to_original(t),
    }


def big_bird_original(t: dict[str, np.ndarray], three_d: bool) -> dict[str, np.ndarray]:
    return {
        **embeddings_to_original(t, "bert/encoder"),  # the original keeps this LN in the encoder
        **encoder_layers_to_original(t, three_d),
        "bert/pooler/dense/kernel": t["bert.pooler.weight"].T,
        "bert/pooler/dense/bias": t["bert.pooler.bias"],
        **pretraining_heads_to_original(t),
    }


TRIVIA_QA_LAYER_PARTS = {
    "attention.self.query": "big_bird_attention/query",
    "attention.self.key": "big_bird_attention/key",
    "attention.self.value": "big_bird_attention/value",
    "attention.output.dense": "big_bird_attention/attention_output",
    "attention.output.LayerNorm": "self_attention_layer_norm",
    "intermediate.dense": "intermediate",
    "output.dense": "output",
    "output.LayerNorm": "output_layer_norm",
}


def trivia_qa_original(t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keras (Model Garden) names; layer 0's scope is `transformer_scaffold` without a suffix."""
    out = {
        "word_embeddings/embeddings": t["bert.embeddings.word_embeddings.weight"],
        "position_embedding/embeddings": t["bert.embeddings.position_embeddings.weight"],
        "type_embeddings/embeddings": t["bert.embeddings.token_type_embeddings.weight"],
        "embeddings/layer_norm/gamma": t["bert.embeddings.LayerNorm.weight"],
        "embeddings/layer_norm/beta": t["bert.embeddings.LayerNorm.bias"],
        "trivia_qa_head/dense/kernel": t["qa_classifier.intermediate.dense.weight"].T,
        "trivia_qa_head/dense/bias": t["qa_classifier.intermediate.dense.bias"],
        "trivia_qa_head/output/kernel": t["qa_classifier.output.dense.weight"].T,
        "trivia_qa_head/output/bias": t["qa_classifier.output.dense.bias"],
        "trivia_qa_head/layer_normalization/gamma": t["qa_classifier.output.LayerNorm.weight"],
        "trivia_qa_head/layer_normalization/beta": t["qa_classifier.output.LayerNorm.bias"],
        "trivia_qa_head/dense_1/kernel": t["qa_classifier.qa_outputs.weight"].T,
        "trivia_qa_head/dense_1/bias": t["qa_classifier.qa_outputs.bias"],
    }
    for name, value in encoder_layers_to_original(t, three_d=True).items():
        _, _, layer, *module, leaf = name.split("/")
        index = int(layer.removeprefix("layer_"))
        scope = "transformer_scaffold" if index == 0 else f"transformer_scaffold_{index}"
        part = TRIVIA_QA_LAYER_PARTS[".".join(module)]
        out[f"{scope}/{part}/{leaf}"] = value
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


PEGASUS_ENCODER_PARTS = {
    "self_attn.self.query": "attention/self/query",
    "self_attn.self.key": "attention/self/key",
    "self_attn.self.value": "attention/self/value",
    "self_attn.output": "attention/output/dense",
    "self_attn_layer_norm": "attention/self/LayerNorm",
    "final_layer_norm": "intermediate/LayerNorm",
    "fc1": "intermediate/dense",
    "fc2": "output/dense",
}
PEGASUS_DECODER_PARTS = {
    "self_attn.q_proj": "attention/self/query",
    "self_attn.k_proj": "attention/self/key",
    "self_attn.v_proj": "attention/self/value",
    "self_attn.out_proj": "attention/output/dense",
    "self_attn_layer_norm": "attention/self/LayerNorm",
    "encoder_attn.q_proj": "attention/encdec/query",
    "encoder_attn.k_proj": "attention/encdec/key",
    "encoder_attn.v_proj": "attention/encdec/value",
    "encoder_attn.out_proj": "attention/encdec_output/dense",
    "encoder_attn_layer_norm": "attention/encdec/LayerNorm",
    "final_layer_norm": "intermediate/LayerNorm",
    "fc1": "intermediate/dense",
    "fc2": "output/dense",
}


def pegasus_original(t: dict[str, np.ndarray], attention_bias: float | None = 0.0):
    """`pegasus/...` names. The original also stores attention biases that the canonical model
    (use_bias=False) does not have; `attention_bias` fills them (None: leave them out)."""
    out = {
        "pegasus/embeddings/word_embeddings": t["model.shared.weight"],
        "pegasus/embeddings/position_embeddings": t["model.encoder.embed_positions.weight"],
        "pegasus/encoder/LayerNorm/gamma": t["model.encoder.layernorm_embedding.weight"],
        "pegasus/encoder/LayerNorm/beta": t["model.encoder.layernorm_embedding.bias"],
        "pegasus/decoder/LayerNorm/gamma": t["model.decoder.layernorm_embedding.weight"],
        "pegasus/decoder/LayerNorm/beta": t["model.decoder.layernorm_embedding.bias"],
    }
    for name, value in t.items():
        for stack, parts in (
            ("encoder", PEGASUS_ENCODER_PARTS),
            ("decoder", PEGASUS_DECODER_PARTS),
        ):
            head = f"model.{stack}.layers."
            if not name.startswith(head):
                continue
            layer, rest = name[len(head) :].split(".", 1)
            module, leaf = rest.rsplit(".", 1)
            base = f"pegasus/{stack}/layer_{layer}/{parts[module]}"
            if module.endswith("layer_norm"):
                out[f"{base}/{'gamma' if leaf == 'weight' else 'beta'}"] = value
            elif leaf == "weight":
                out[f"{base}/kernel"] = np.ascontiguousarray(value.T)
                if attention_bias is not None and module not in ("fc1", "fc2"):
                    out[f"{base}/bias"] = np.full(HIDDEN, attention_bias, np.float32)
            else:
                out[f"{base}/bias"] = value
    return out


# -- round trips ---------------------------------------------------------------------------------


def test_bert_checkpoint_lands_bit_identical(tmp_path) -> None:
    expected = golden("bert-pretraining")
    original = with_training_state(bert_original(expected))
    assert "bert/embeddings/LayerNorm/gamma/adam_m" in original
    prefix = write_tf_checkpoint(tmp_path / "bert_model.ckpt", original)

    config, tensors = import_original_tf(prefix, "bert", GOLDENS / "bert-pretraining")
    assert_same_tensors(tensors, expected)
    assert config.architectures == ["BertForPreTraining"]

    out = convert_original_tf(prefix, tmp_path / "out", "bert", GOLDENS / "bert-pretraining")
    assert_same_tensors(read_checkpoint(out), expected)
    written = load_config(out)
    assert written.architectures == ["BertForPreTraining"]
    assert written.hidden_size == HIDDEN and written.num_hidden_layers == 2


def test_bert_config_comes_from_bert_config_json_beside_the_checkpoint(tmp_path) -> None:
    golden_config = json.loads((GOLDENS / "bert-pretraining" / "config.json").read_text())
    keys = [
        "attention_probs_dropout_prob",
        "hidden_act",
        "hidden_dropout_prob",
        "hidden_size",
        "initializer_range",
        "intermediate_size",
        "max_position_embeddings",
        "num_attention_heads",
        "num_hidden_layers",
        "type_vocab_size",
        "vocab_size",
    ]
    # The original file: no model_type, plus a key the canonical config does not have.
    original = {k: golden_config[k] for k in keys} | {"directionality": "bidi"}
    (tmp_path / "bert_config.json").write_text(json.dumps(original))
    prefix = write_tf_checkpoint(
        tmp_path / "bert_model.ckpt", bert_original(golden("bert-pretraining"))
    )

    config, _ = import_original_tf(prefix, "bert")
    for key in keys:
        assert getattr(config, key) == golden_config[key], key
    assert not hasattr(config, "directionality")


@pytest.mark.parametrize("three_d", [False, True], ids=["2d-kernels", "3d-kernels"])
def test_big_bird_checkpoint_lands_bit_identical(tmp_path, three_d: bool) -> None:
    expected = golden("bigbird-pretraining")
    original = with_training_state(big_bird_original(expected, three_d))
    assert "bert/embeddings/LayerNorm/gamma" not in original
    if three_d:
        assert original["bert/encoder/layer_0/attention/self/query/kernel"].shape == (32, 4, 8)
        assert original["bert/encoder/layer_1/attention/output/dense/kernel"].shape == (4, 8, 32)
        assert original["bert/encoder/layer_0/attention/self/key/bias"].shape == (4, 8)
    prefix = write_tf_checkpoint(tmp_path / "model.ckpt-1000", original)

    config, tensors = import_original_tf(prefix, "big_bird", GOLDENS / "bigbird-pretraining")
    assert_same_tensors(tensors, expected)
    assert config.architectures == ["BigBirdForPreTraining"]


def test_big_bird_3d_kernel_with_wrong_head_count_is_an_error(tmp_path) -> None:
    original = big_bird_original(golden("bigbird-pretraining"), three_d=True)
    name = "bert/encoder/layer_0/attention/self/query/kernel"
    original[name] = np.ascontiguousarray(original[name].reshape(32, 2, 16))
    prefix = write_tf_checkpoint(tmp_path / "model.ckpt", original)
    with pytest.raises(CheckpointError, match=r"query/kernel.*2 heads, the config says 4"):
        import_original_tf(prefix, "big_bird", GOLDENS / "bigbird-pretraining")


def test_big_bird_config_from_original_hyper_parameters() -> None:
    config = original_config(
        {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 37,
            "hidden_act": "gelu",
            "block_size": 8,
            "num_rand_blocks": 2,
            "attention_type": "block_sparse",
            "max_position_embeddings": 512,
            "vocab_size": 99,
            "type_vocab_size": 2,
            "rescale_embedding": True,
            "norm_type": "postnorm",
            "scope": "bert",
            "max_encoder_length": 1024,
        },
        "big_bird",
    )
    assert isinstance(config, BigBirdConfig)
    assert (config.num_random_blocks, config.block_size, config.rescale_embeddings) == (2, 8, True)
    assert config.hidden_act == "gelu_new"  # the BigBird code's gelu is the tanh approximation
    with pytest.raises(ValueError, match="norm_type='prenorm'"):
        original_config({"norm_type": "prenorm"}, "big_bird")


def test_trivia_qa_checkpoint_lands_bit_identical(tmp_path) -> None:
    expected = golden("bigbird-qa")
    original = with_training_state(trivia_qa_original(expected))
    assert "transformer_scaffold/big_bird_attention/query/kernel" in original
    assert original["transformer_scaffold_1/big_bird_attention/attention_output/kernel"].ndim == 3
    prefix = write_tf_checkpoint(tmp_path / "trivia_qa.ckpt", original)

    config, tensors = import_original_tf(prefix, "big_bird_trivia_qa", GOLDENS / "bigbird-qa")
    assert_same_tensors(tensors, expected)
    assert config.architectures == ["BigBirdForQuestionAnswering"]


def trivia_qa_ordered(expected: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """The variables as a SavedModel lists them: in order, and the head's second dense layer
    last, under the name of the first one (the reference's positional rule)."""
    named = trivia_qa_original(expected)
    second_dense = [
        ("trivia_qa_head/dense/kernel", named.pop("trivia_qa_head/output/kernel")),
        ("trivia_qa_head/dense/bias", named.pop("trivia_qa_head/output/bias")),
    ]
    return [*named.items(), *second_dense]


def test_trivia_qa_ordered_variables_follow_the_reference_positional_rule() -> None:
    expected = golden("bigbird-qa")
    ordered = [(f"{name}:0", value) for name, value in trivia_qa_ordered(expected)]
    _, tensors = import_original_tf(ordered, "big_bird_trivia_qa", GOLDENS / "bigbird-qa")
    assert_same_tensors(tensors, expected)


def test_trivia_qa_saved_model_lands_bit_identical(tmp_path) -> None:
    expected = golden("bigbird-qa")
    root = tf.__internal__.tracking.AutoTrackable()
    root.variables = [tf.Variable(v, name=n) for n, v in trivia_qa_ordered(expected)]
    tf.saved_model.save(root, str(tmp_path / "saved_model"))
    _, tensors = import_original_tf(
        tmp_path / "saved_model", "big_bird_trivia_qa", GOLDENS / "bigbird-qa"
    )
    assert_same_tensors(tensors, expected)


def test_pegasus_checkpoint_lands_bit_identical(tmp_path) -> None:
    canonical = golden("pegasus-conditional-generation")
    original = with_training_state(pegasus_original(canonical))
    assert "pegasus/encoder/layer_0/attention/self/query/bias" in original  # ignored by design
    assert "pegasus/decoder/layer_1/attention/encdec_output/dense/bias" in original
    prefix = write_tf_checkpoint(tmp_path / "model.ckpt-0", original)

    config, tensors = import_original_tf(
        prefix, "bigbird_pegasus", GOLDENS / "pegasus-conditional-generation"
    )
    # The original has one position table, which feeds both stacks (the golden's two tables
    # were initialised independently, so the decoder's is the encoder's here).
    table = canonical["model.encoder.embed_positions.weight"]
    expected = canonical | {"model.decoder.embed_positions.weight": table}
    assert_same_tensors(tensors, expected)
    assert np.array_equal(tensors["model.decoder.embed_positions.weight"], table)
    assert not np.any(tensors["final_logits_bias"])
    assert not any("lm_head" in n or "embed_tokens" in n for n in tensors)  # tied: stored once
    assert config.architectures == ["BigBirdPegasusForConditionalGeneration"]


def test_pegasus_attention_biases_are_kept_with_use_bias(tmp_path) -> None:
    canonical = golden("pegasus-conditional-generation")
    original = pegasus_original(canonical, attention_bias=0.5)
    config = load_config(GOLDENS / "pegasus-conditional-generation").copy(use_bias=True)
    _, tensors = import_original_tf(original, "bigbird_pegasus", config)
    assert np.all(tensors["model.encoder.layers.0.self_attn.self.query.bias"] == 0.5)
    assert np.all(tensors["model.encoder.layers.1.self_attn.output.bias"] == 0.5)
    assert np.all(tensors["model.decoder.layers.0.encoder_attn.out_proj.bias"] == 0.5)
    # Without use_bias they are dropped as the reference does, but non-zero ones are announced.
    with pytest.warns(
        UserWarning,
        match=r"24 attention biases are not zero.*pegasus/encoder/layer_0/attention/self/query/bias",
    ):
        import_original_tf(original, "bigbird_pegasus", GOLDENS / "pegasus-conditional-generation")


def test_pegasus_config_from_original_hyper_parameters() -> None:
    config = original_config(
        {
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 37,
            "hidden_act": "gelu",
            "max_position_embeddings": 512,
            "vocab_size": 99,
            "block_size": 8,
            "num_rand_blocks": 2,
            "use_bias": False,
            "rescale_embedding": True,
            "norm_type": "prenorm",
        },
        "bigbird_pegasus",
    )
    assert isinstance(config, BigBirdPegasusConfig)
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (32, 2, 2)
    assert (config.encoder_ffn_dim, config.decoder_attention_heads) == (37, 4)
    assert config.activation_function == "gelu_new" and config.scale_embedding is True


# -- errors --------------------------------------------------------------------------------------


def test_unknown_variable_is_named(tmp_path) -> None:
    original = bert_original(golden("bert-pretraining"))
    original["bert/encoder/layer_0/attention/self/mystery/kernel"] = np.zeros((32, 32), np.float32)
    original["cls/squad/output_weights"] = np.zeros((2, 32), np.float32)
    prefix = write_tf_checkpoint(tmp_path / "bert_model.ckpt", original)
    with pytest.raises(CheckpointError) as info:
        import_original_tf(prefix, "bert", GOLDENS / "bert-pretraining")
    message = str(info.value)
    assert "bert/encoder/layer_0/attention/self/mystery/kernel" in message
    assert "cls/squad/output_weights" in message


def test_missing_tensor_is_named(tmp_path) -> None:
    original = big_bird_original(golden("bigbird-pretraining"), three_d=False)
    del original["bert/encoder/layer_1/output/LayerNorm/beta"]
    del original["cls/seq_relationship/output_weights"]
    prefix = write_tf_checkpoint(tmp_path / "model.ckpt", original)
    with pytest.raises(CheckpointError) as info:
        import_original_tf(prefix, "big_bird", GOLDENS / "bigbird-pretraining")
    message = str(info.value)
    assert "bert.encoder.layer.1.output.LayerNorm.bias" in message
    assert "cls.seq_relationship.weight" in message


def test_config_that_does_not_fit_the_tensors_is_an_error(tmp_path) -> None:
    prefix = write_tf_checkpoint(
        tmp_path / "bert_model.ckpt", bert_original(golden("bert-pretraining"))
    )
    wrong_vocab = load_config(GOLDENS / "bert-pretraining").copy(vocab_size=100)
    with pytest.raises(
        CheckpointError, match=r"word_embeddings.weight .*expects \(100, 32\).*\(99, 32\)"
    ):
        import_original_tf(prefix, "bert", wrong_vocab)
    one_layer = load_config(GOLDENS / "bert-pretraining").copy(num_hidden_layers=1)
    with pytest.raises(CheckpointError, match=r"does not expect.*bert\.encoder\.layer\.1\."):
        import_original_tf(prefix, "bert", one_layer)
    with pytest.raises(ValueError, match="needs a BigBirdConfig"):
        import_original_tf(prefix, "big_bird", wrong_vocab)


def test_missing_checkpoint_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no TensorFlow checkpoint at .*nothing.ckpt"):
        import_original_tf(tmp_path / "nothing.ckpt", "bert", GOLDENS / "bert-pretraining")
    with pytest.raises(ValueError, match="no config given"):
        import_original_tf(tmp_path / "nothing.ckpt", "bert")
    with pytest.raises(ValueError, match="unknown family 'gpt'"):
        import_original_tf(tmp_path / "nothing.ckpt", "gpt", GOLDENS / "bert-pretraining")


def test_optimizer_and_bookkeeping_variables_are_recognised() -> None:
    for name in (
        "global_step",
        "bert/pooler/dense/kernel/adam_m",
        "bert/pooler/dense/kernel/adam_v",
        "AdamWeightDecayOptimizer_1",
        "bert/pooler/dense/kernel/Adam_1",
        "beta1_power",
    ):
        assert is_optimizer_variable(name), name
    for name in ("bert/pooler/dense/kernel", "cls/predictions/output_bias"):
        assert not is_optimizer_variable(name), name
    assert set(FAMILIES) == {"bert", "big_bird", "big_bird_trivia_qa", "bigbird_pegasus"}
