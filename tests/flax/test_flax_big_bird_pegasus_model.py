"""BigBirdPegasus (Flax) behaviour beyond the goldens: checkpoint names and tying, save/load, the
preallocated key/value cache against the full decoder pass (eagerly and under `jax.jit`), padding,
generation with and without the cache, and input errors. Tiny configs (block 8, 2 random blocks:
encoder inputs of at most 72 tokens run full attention); few distinct shapes, since XLA compile
time dominates."""

from __future__ import annotations

import json

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

from aviary import BigBirdPegasusConfig  # noqa: E402
from aviary.conversion.checkpoint import CheckpointError  # noqa: E402
from aviary.conversion.frameworks import model_class  # noqa: E402
from aviary.core.naming import flax_to_canonical  # noqa: E402
from aviary.flax import (  # noqa: E402
    FlaxBigBirdPegasusForCausalLM,
    FlaxBigBirdPegasusForConditionalGeneration,
    FlaxBigBirdPegasusForSequenceClassification,
    FlaxBigBirdPegasusModel,
)
from aviary.flax.big_bird_pegasus import shift_tokens_right  # noqa: E402
from conftest import GOLDENS, GoldenCase  # noqa: E402

pytestmark = [
    pytest.mark.flax,
    pytest.mark.filterwarnings("ignore::aviary.core.block_sparse.BlockSparseWarning"),
]

EOS, PAD, START = 1, 0, 2
GENERATION_CASE = "pegasus-conditional-generation"


def tiny_config(**overrides) -> BigBirdPegasusConfig:
    values = dict(
        vocab_size=99,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_position_embeddings=512,
        block_size=8,
        num_random_blocks=2,
        dropout=0.0,
    )
    return BigBirdPegasusConfig(**{**values, **overrides})


def ids(batch: int, length: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(3, 99, (batch, length))


def assert_close(actual, expected, atol: float = 1e-5) -> None:
    diff = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected))))
    assert diff <= atol, f"max abs difference {diff:.3g} > {atol}"


@pytest.fixture(scope="module")
def model() -> FlaxBigBirdPegasusForConditionalGeneration:
    """A random tiny model (block-sparse attention), initialised once for the tests that only
    call it."""
    return FlaxBigBirdPegasusForConditionalGeneration(tiny_config())


# -- checkpoint names, tying, save / load ---------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "pegasus-model-block_sparse",
        "pegasus-conditional-generation",
        "pegasus-seqcls",
        "pegasus-qa",
        "pegasus-causal-lm",
    ],
)
def test_checkpoint_names_are_the_references(case: str) -> None:
    """The parameters map (by the generic Flax rule) onto exactly the reference's checkpoint
    keys and shapes: the shared table once, no encoder/decoder copies, no tied LM head."""
    from safetensors.numpy import load_file

    golden = GoldenCase(case)
    cls = model_class(golden.class_name, "flax")
    model = cls(BigBirdPegasusConfig.from_pretrained(golden.folder), _do_init=False)
    reference = load_file(GOLDENS / case / "model.safetensors")
    ours = canonical_shapes(model)
    assert set(ours) == set(reference)
    for name, shape in ours.items():
        assert shape == reference[name].shape, name


def canonical_shapes(model) -> dict[str, tuple[int, ...]]:
    """`{canonical name: PyTorch-layout shape}` of a model's parameters (none computed)."""
    out = {}
    for path, shape in model.param_shapes().items():
        name, transpose = flax_to_canonical(path)
        out[name] = tuple(reversed(shape.shape)) if transpose else tuple(shape.shape)
    return out


def test_untied_lm_head_is_its_own_parameter() -> None:
    config = tiny_config(tie_word_embeddings=False)
    names = set(
        canonical_shapes(FlaxBigBirdPegasusForConditionalGeneration(config, _do_init=False))
    )
    assert {"lm_head.weight", "model.shared.weight", "final_logits_bias"} <= names


def test_save_and_load_round_trip(tmp_path) -> None:
    model = FlaxBigBirdPegasusForConditionalGeneration(tiny_config())
    params = jax.tree_util.tree_map(lambda x: x, model.params)
    params["final_logits_bias"] = jnp.arange(99, dtype=jnp.float32)[None] / 99
    model.params = params
    model.generation_config.num_beams = 2
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "generation_config.json").read_text())["num_beams"] == 2
    loaded = FlaxBigBirdPegasusForConditionalGeneration.from_pretrained(tmp_path)
    assert loaded.generation_config.num_beams == 2
    flat_a = jax.tree_util.tree_leaves_with_path(model.params)
    flat_b = dict(jax.tree_util.tree_leaves_with_path(loaded.params))
    assert len(flat_a) == len(flat_b)
    for path, value in flat_a:
        np.testing.assert_array_equal(np.asarray(flat_b[path]), np.asarray(value))
    input_ids, decoder_ids = ids(2, 90), ids(2, 6, seed=1)
    a = model(input_ids, decoder_input_ids=decoder_ids).logits
    b = loaded(input_ids, decoder_input_ids=decoder_ids).logits
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # The bare model loads the head checkpoint (the head tensors are discarded).
    base, info = FlaxBigBirdPegasusModel.from_pretrained(tmp_path, output_loading_info=True)
    assert "final_logits_bias" in info["discarded_keys"]
    np.testing.assert_array_equal(
        np.asarray(base.params["shared"]["embedding"]),
        np.asarray(model.params["model"]["shared"]["embedding"]),
    )


def test_loading_is_strict(model, tmp_path) -> None:
    from safetensors.numpy import load_file, save_file

    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    broken = {k: v for k, v in tensors.items() if "layers.1.fc2.weight" not in k}
    broken["model.encoder.layers.0.self_attn.self.query.bias"] = np.zeros(32, np.float32)
    save_file(broken, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"layers\.1\.fc2\.weight") as err:
        FlaxBigBirdPegasusForConditionalGeneration.from_pretrained(tmp_path)
    assert "query.bias" in str(err.value)


# -- the decoder cache ------------------------------------------------------------------------


def test_cached_decoding_equals_the_full_pass(model) -> None:
    """One token at a time (eagerly, then as a jitted step), and in two chunks, from the
    preallocated cache: the full decoder pass's logits (block-sparse encoder, a padded row)."""
    input_ids = ids(2, 96)
    mask = np.ones((2, 96), dtype=np.int64)
    mask[1, 70:] = 0
    decoder_ids = ids(2, 7, seed=1)
    assert model.plan(96) is not None
    full = np.asarray(model(input_ids, mask, decoder_input_ids=decoder_ids).logits)
    encoder_outputs = model.encode(input_ids, mask)

    def step(params, cache, token):
        out = model(
            attention_mask=mask,
            encoder_outputs=encoder_outputs,
            decoder_input_ids=token,
            params=params,
            past_key_values=cache,
        )
        return out.logits, out.past_key_values

    jitted = jax.jit(step)
    for run in (step, jitted):
        cache, steps = model.init_cache(2, 7), []
        for t in range(7):
            logits, cache = run(model.params, cache, decoder_ids[:, t : t + 1])
            steps.append(np.asarray(logits))
        assert_close(np.concatenate(steps, axis=1), full)
    key = cache["model"]["decoder"]["layers_0"]["self_attn"]["cached_key"]
    assert key.shape == (2, 4, 7, 8)
    first = model(
        attention_mask=mask,
        encoder_outputs=encoder_outputs,
        decoder_input_ids=decoder_ids[:, :4],
        past_key_values=model.init_cache(2, 7),
    )
    rest = model(
        attention_mask=mask,
        encoder_outputs=encoder_outputs,
        decoder_input_ids=decoder_ids[:, 4:],
        past_key_values=first.past_key_values,
    )
    assert_close(rest.logits, full[:, 4:])
    with pytest.raises(ValueError, match="do not fit in the cache"):
        model(
            attention_mask=mask,
            encoder_outputs=encoder_outputs,
            decoder_input_ids=decoder_ids,
            past_key_values=first.past_key_values,
        )


def test_causal_lm_is_causal_and_caches() -> None:
    model = FlaxBigBirdPegasusForCausalLM(tiny_config())
    assert model.config.is_decoder and not model.config.is_encoder_decoder
    input_ids = ids(2, 20)
    changed = input_ids.copy()
    changed[:, 12:] = 5
    memory = np.random.default_rng(0).normal(size=(2, 9, 32)).astype(np.float32)
    a = np.asarray(model(input_ids, encoder_hidden_states=memory).logits)
    b = np.asarray(model(changed, encoder_hidden_states=memory).logits)
    assert_close(a[:, :12], b[:, :12], 1e-6)
    assert np.abs(a[:, 12:] - b[:, 12:]).max() > 1e-3
    first = model(
        input_ids[:, :-1], encoder_hidden_states=memory, past_key_values=model.init_cache(2, 20)
    )
    step = model(
        input_ids[:, -1:], encoder_hidden_states=memory, past_key_values=first.past_key_values
    )
    assert_close(step.logits[:, -1], a[:, -1])
    with pytest.raises(ValueError, match="has no encoder"):
        model.set_attention_type("original_full")


# -- the encoder ------------------------------------------------------------------------------


@pytest.mark.parametrize("attention_type", ["block_sparse", "original_full"])
def test_padding_does_not_change_the_real_tokens(model, attention_type: str) -> None:
    """A short input (full attention for this call, also under block_sparse) padded with masked
    tokens gives the same outputs as the input alone; the mask is what matters."""
    # The shared model's parameters, with `attention_type`.
    params = model.params
    model = FlaxBigBirdPegasusForConditionalGeneration(
        tiny_config(attention_type=attention_type), _do_init=False
    )
    model.params = params
    short = ids(1, 40)
    padded = np.concatenate([short, np.zeros((1, 20), dtype=short.dtype)], axis=1)
    mask = np.concatenate([np.ones((1, 40)), np.zeros((1, 20))], axis=1).astype(np.int64)
    decoder_ids = ids(1, 6, seed=1)
    alone = model(short, decoder_input_ids=decoder_ids, output_hidden_states=True)
    with_pad = model(padded, mask, decoder_input_ids=decoder_ids, output_hidden_states=True)
    unmasked = model(padded, decoder_input_ids=decoder_ids)
    for a, b in zip(with_pad.encoder_hidden_states, alone.encoder_hidden_states):
        assert_close(np.asarray(a)[:, :40], b)
    assert_close(with_pad.logits, alone.logits)
    assert np.abs(np.asarray(unmasked.logits) - np.asarray(alone.logits)).max() > 1e-3


def test_default_decoder_inputs_are_the_shifted_input() -> None:
    labels = np.array([[5, 6, -100, 7], [8, -100, -100, -100]])
    expected = [[START, 5, 6, PAD], [START, 8, PAD, PAD]]
    assert shift_tokens_right(labels, PAD, START).tolist() == expected
    model = FlaxBigBirdPegasusModel(tiny_config())
    input_ids = ids(2, 30)
    default = model(input_ids).last_hidden_state
    explicit = model(input_ids, decoder_input_ids=shift_tokens_right(input_ids, PAD, START))
    np.testing.assert_array_equal(np.asarray(default), np.asarray(explicit.last_hidden_state))


# -- generation -------------------------------------------------------------------------------


def test_generation_with_and_without_cache_and_eos_padding() -> None:
    case = GoldenCase(GENERATION_CASE)
    model = FlaxBigBirdPegasusForConditionalGeneration.from_pretrained(case.folder)
    input_ids, mask = case.inputs["input_ids"], case.inputs["attention_mask"]
    greedy = model.generate(input_ids, mask, max_length=9)
    np.testing.assert_array_equal(greedy, case.outputs["generated_greedy"])
    np.testing.assert_array_equal(
        model.generate(input_ids, mask, max_length=9, use_cache=False), greedy
    )
    beams = model.generate(input_ids, mask, max_new_tokens=4, num_beams=3, use_cache=False)
    np.testing.assert_array_equal(
        beams, model.generate(input_ids, mask, max_new_tokens=4, num_beams=3)
    )
    # With 44 as EOS, row 0 stops at its first 44 and is padded; row 1 runs to the end.
    stopped = model.generate(input_ids, mask, max_new_tokens=8, eos_token_id=44)
    assert stopped[0].tolist() == [2, 73, 44, PAD, PAD, PAD, PAD, PAD, PAD]
    np.testing.assert_array_equal(stopped[1], greedy[1])
    # The model's generation defaults come from its config (e.g. a hub config's num_beams).
    three = FlaxBigBirdPegasusForConditionalGeneration.from_pretrained(case.folder, num_beams=3)
    np.testing.assert_array_equal(
        three.generate(input_ids, mask, max_new_tokens=8), case.outputs["generated_beam3"]
    )


def test_generation_settings_are_checked(model) -> None:
    input_ids = ids(1, 20)
    with pytest.raises(ValueError, match="num_return_sequences"):
        model.generate(input_ids, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="sampling"):
        model.generate(input_ids, do_sample=True)
    with pytest.raises(ValueError, match="max_length=1"):
        model.generate(input_ids, max_length=1)
    with pytest.raises(ValueError, match="input_ids must be"):
        model.generate(input_ids[0])


# -- errors -----------------------------------------------------------------------------------


def test_bad_inputs_get_clear_errors(model) -> None:
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(ids(1, 513), decoder_input_ids=ids(1, 3))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(ids(1, 20), decoder_input_ids=ids(1, 513))
    with pytest.raises(ValueError, match="input_ids contains id 99"):
        model(np.full((1, 20), 99))
    with pytest.raises(ValueError, match="attention_mask has shape"):
        model(ids(1, 80), attention_mask=np.ones((1, 79)), decoder_input_ids=ids(1, 3))
    with pytest.raises(ValueError, match="decoder attention_mask"):
        model(ids(1, 80), decoder_input_ids=ids(1, 3), decoder_attention_mask=np.ones((1, 4)))
    with pytest.raises(ValueError, match="input_ids"):
        model(inputs_embeds=np.zeros((1, 20, 32), np.float32))
    with pytest.raises(ValueError, match="attention_type"):
        model.set_attention_type("sparse")

    classifier = FlaxBigBirdPegasusForSequenceClassification(tiny_config())
    mismatch = ids(2, 20)
    mismatch[0, 19] = EOS
    mismatch[1, [10, 19]] = EOS
    with pytest.raises(ValueError, match="same number of <eos> tokens"):
        classifier(mismatch)
    with pytest.raises(ValueError, match="no <eos> token"):
        classifier(ids(2, 20))
    with pytest.raises(NotImplementedError, match="input_ids"):
        classifier(inputs_embeds=np.zeros((1, 20, 32), np.float32))

    model.set_block_sparse_policy("resample", rng=np.random.default_rng(0))
    try:
        with pytest.raises(ValueError, match="resample"):
            jax.jit(lambda p, x: model(x, params=p).logits)(model.params, ids(1, 96))
    finally:
        model.set_block_sparse_policy()  # the shared model's default again
