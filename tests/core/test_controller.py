"""The framework-neutral block-sparse controller and the head-output mechanism."""

from __future__ import annotations

import numpy as np
import pytest

from aviary import BertConfig, BigBirdConfig, BigBirdPegasusConfig
from aviary.core.block_sparse import (
    MASK_PENALTY,
    BlockSparseController,
    check_attention_type,
    plan_for_config,
    unpad_outputs,
)
from aviary.core.outputs import (
    OUTPUT_FIELDS,
    head_output,
    output_class,
    resolve_output_flags,
    resolve_return_dict,
)

SMALL = dict(
    vocab_size=50,
    hidden_size=8,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=16,
    block_size=4,
    num_random_blocks=1,
    max_position_embeddings=128,
)


def test_check_attention_type_names_the_problem():
    check_attention_type("block_sparse")
    check_attention_type("original_full", decoder=True)
    with pytest.raises(ValueError, match="is not one of original_full, block_sparse"):
        check_attention_type("sparse")
    with pytest.raises(ValueError, match="needs attention_type='original_full'"):
        check_attention_type("block_sparse", decoder=True)


def test_controller_refuses_block_sparse_decoders():
    with pytest.raises(ValueError, match="as a decoder"):
        BlockSparseController(BigBirdConfig(**SMALL, is_decoder=True))
    controller = BlockSparseController(
        BigBirdConfig(**SMALL, is_decoder=True, attention_type="original_full")
    )
    with pytest.raises(ValueError, match="as a decoder"):
        controller.set_attention_type("block_sparse")
    assert controller.attention_type == "original_full"
    # The Pegasus encoder is never a decoder, whatever the config says of the decoder.
    pegasus = BigBirdPegasusConfig(
        vocab_size=50,
        d_model=8,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        block_size=4,
        num_random_blocks=1,
    )
    assert BlockSparseController(pegasus, decoder=False).attention_type == "block_sparse"


def test_controller_plans_per_call():
    config = BigBirdConfig(**SMALL)
    controller = BlockSparseController(config)
    # At most (5 + 2r) * block = 28 tokens: full attention for this call, block-sparse again later.
    assert controller.plan(28, training=False) is None
    plan = controller.plan(30, training=False)
    assert plan.use_block_sparse and plan.pad_length == 2
    expected = plan_for_config(config, 30, training=False)
    np.testing.assert_array_equal(plan.key_blocks, expected.key_blocks)
    # Decoding steps with a cache and original_full never plan.
    assert controller.plan(30, training=False, past_length=3) is None
    controller.set_attention_type("original_full")
    assert controller.plan(64, training=False) is None


def test_controller_errors():
    controller = BlockSparseController(BigBirdConfig(**SMALL))
    with pytest.raises(ValueError, match="encoder_hidden_states need cross-attention"):
        controller.plan(8, training=False, has_encoder_hidden_states=True)
    with pytest.raises(ValueError, match="takes a \\[batch, sequence\\] attention_mask"):
        controller.plan(64, training=False, attention_mask_rank=3)
    # A 3-D mask is fine when the call falls back to full attention.
    assert controller.plan(16, training=False, attention_mask_rank=3) is None
    with pytest.raises(ValueError):
        controller.set_policy("resample")  # needs a generator
    with pytest.raises(ValueError):
        controller.set_policy("random")


def test_controller_warns_unless_told_not_to(recwarn):
    import aviary.core.block_sparse as block_sparse

    block_sparse._warned_reasons.clear()
    controller = BlockSparseController(BigBirdConfig(**SMALL))
    assert controller.plan(12, training=False, warn=False) is None
    assert not [w for w in recwarn if issubclass(w.category, block_sparse.BlockSparseWarning)]
    with pytest.warns(block_sparse.BlockSparseWarning, match="use full attention"):
        controller.plan(12, training=False)


def test_resample_policy_draws_from_its_generator():
    controller = BlockSparseController(BigBirdConfig(**SMALL))
    controller.set_policy("resample", np.random.default_rng(7))
    first = controller.plan(64, training=True).random_blocks
    second = controller.plan(64, training=True).random_blocks
    controller.set_policy("resample", np.random.default_rng(7))
    np.testing.assert_array_equal(controller.plan(64, training=True).random_blocks, first)
    assert controller.plan(64, training=True).random_blocks.tolist() == second.tolist()


def test_slot_penalty_marks_invalid_slots():
    plan = plan_for_config(BigBirdConfig(**SMALL), 64)
    penalty = plan.slot_penalty
    assert penalty.dtype == np.float32 and penalty.shape == plan.key_block_valid.shape
    np.testing.assert_array_equal(penalty == MASK_PENALTY, ~plan.key_block_valid)
    np.testing.assert_array_equal(penalty[plan.key_block_valid], 0.0)
    assert not penalty.flags.writeable


def test_unpad_outputs_cuts_every_per_token_axis():
    plan = plan_for_config(BigBirdConfig(**SMALL), 30)  # padded to 32
    hidden = np.arange(2 * 32 * 3).reshape(2, 32, 3)
    attention = np.zeros((2, 2, 32, 32))
    last, states, attentions = unpad_outputs(plan, hidden, (hidden, hidden), (attention,))
    assert last.shape == (2, 30, 3)
    assert [s.shape for s in states] == [(2, 30, 3)] * 2
    assert attentions[0].shape == (2, 2, 30, 30)
    np.testing.assert_array_equal(last, hidden[:, :30])
    assert unpad_outputs(plan, hidden, None, None)[1:] == (None, None)
    # Layers skipped by layerdrop have no attention map.
    assert unpad_outputs(plan, hidden, None, (None, attention))[2][0] is None
    assert unpad_outputs(None, hidden, None, None)[0] is hidden


def test_resolve_flags_default_to_the_config():
    config = BertConfig(output_attentions=True)
    assert resolve_output_flags(config, None, None) == (True, False)
    assert resolve_output_flags(config, False, True) == (False, True)
    assert resolve_return_dict(config, None) is True
    assert resolve_return_dict(BertConfig(return_dict=False), None) is False
    assert resolve_return_dict(config, False) is False


def test_head_output_copies_the_base_fields_it_lacks():
    base_class = output_class("BaseModelOutputWithPoolingAndCrossAttentions")
    head_class = output_class("SequenceClassifierOutput")
    base = base_class(
        last_hidden_state="h", pooler_output="p", hidden_states=("a",), attentions=None
    )
    out = head_output(head_class, base, True, loss=None, logits="z")
    assert isinstance(out, head_class)
    assert (out.logits, out.hidden_states, out.attentions, out.loss) == ("z", ("a",), None, None)
    assert head_output(head_class, base, False, loss="l", logits="z") == ("l", "z", ("a",))
    # Encoder-decoder fields copy by name, and a head's own value wins.
    seq2seq = output_class("Seq2SeqModelOutput")(
        last_hidden_state="d", encoder_last_hidden_state="e", decoder_hidden_states=("x",)
    )
    lm = head_output(output_class("Seq2SeqLMOutput"), seq2seq, True, logits="z")
    assert (lm.encoder_last_hidden_state, lm.decoder_hidden_states) == ("e", ("x",))
    assert "last_hidden_state" not in OUTPUT_FIELDS["Seq2SeqLMOutput"]


def test_as_encoder_output_takes_an_object_an_array_or_a_tuple():
    from aviary.core.outputs import as_encoder_output

    base = output_class("BaseModelOutput")
    state = np.zeros((1, 3, 2))
    given = base(last_hidden_state=state)
    assert as_encoder_output(given, base) is given
    assert as_encoder_output(state, base).last_hidden_state is state
    out = as_encoder_output((state, ("h",), ("a",)), base)
    assert (out.hidden_states, out.attentions) == (("h",), ("a",))
    for bad in ((), "text", None):
        with pytest.raises(TypeError, match="encoder_outputs must be the encoder's output"):
            as_encoder_output(bad, base)
