"""Flax (linen) base class: building, initialising, loading and saving models; shared helpers.

A Flax model is a pair: a linen module (the computation) and a wrapper that holds the config, the
module and the parameters, as in the reference library. Parameter paths follow the PyTorch
attribute paths, so `aviary.core.naming.flax_to_canonical` turns each of them into its canonical
checkpoint name and loading is a matter of lining up names (`aviary.conversion.match_checkpoint`).

The forward pass is a pure function of `(params, inputs)`: wrap a call in `jax.jit` with the
parameters as an argument. Input checks that need values (ids inside the embedding tables) run only
when the inputs are concrete arrays, not while `jax.jit` traces them; shape checks always run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import traverse_util

from aviary.conversion.checkpoint import (
    LoadReport,
    match_checkpoint,
    write_checkpoint,
)
from aviary.conversion.formats import read_model_weights
from aviary.core import checks
from aviary.core.configs import PretrainedConfig
from aviary.core.naming import flax_to_canonical
from aviary.core.outputs import (
    ModelOutput,
    output_class,
    resolve_output_flags,
    resolve_return_dict,
)

# -- activations ---------------------------------------------------------------------------------


def _gelu(x: jax.Array) -> jax.Array:
    # exact (erf) GELU, as torch's default
    return jax.nn.gelu(x, approximate=False)


def _gelu_new(x: jax.Array) -> jax.Array:
    # tanh approximation of GELU (the original GPT-2/BigBird formula)
    return jax.nn.gelu(x, approximate=True)


def _gelu_fast(x: jax.Array) -> jax.Array:
    return 0.5 * x * (1.0 + jnp.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _quick_gelu(x: jax.Array) -> jax.Array:
    return x * jax.nn.sigmoid(1.702 * x)


def _mish(x: jax.Array) -> jax.Array:
    return x * jnp.tanh(jax.nn.softplus(x))


ACT2FN = {
    "gelu": _gelu,
    "gelu_new": _gelu_new,
    "gelu_pytorch_tanh": _gelu_new,
    "gelu_fast": _gelu_fast,
    "quick_gelu": _quick_gelu,
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "selu": jax.nn.selu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "mish": _mish,
    "linear": lambda x: x,
}


def get_activation(name_or_fn: Any):
    """The activation function a config names (or the callable it holds)."""
    return name_or_fn if callable(name_or_fn) else ACT2FN[name_or_fn]


# -- outputs -------------------------------------------------------------------------------------


def pytree_output_class(name: str) -> type[ModelOutput]:
    """The output class `name`, registered as a JAX pytree so that it passes through `jax.jit`."""
    cls = output_class(name)
    jax.tree_util.register_pytree_node(
        cls,
        lambda out: (tuple(getattr(out, f) for f in out._fields), None),
        lambda _, children: cls(*children),
    )
    return cls


# The output classes of every model (fields: `aviary.core.outputs.OUTPUT_FIELDS`).
BaseModelOutput = pytree_output_class("BaseModelOutput")
BaseModelOutputWithPastAndCrossAttentions = pytree_output_class(
    "BaseModelOutputWithPastAndCrossAttentions"
)
BaseModelOutputWithPoolingAndCrossAttentions = pytree_output_class(
    "BaseModelOutputWithPoolingAndCrossAttentions"
)
CausalLMOutputWithCrossAttentions = pytree_output_class("CausalLMOutputWithCrossAttentions")
MaskedLMOutput = pytree_output_class("MaskedLMOutput")
NextSentencePredictorOutput = pytree_output_class("NextSentencePredictorOutput")
SequenceClassifierOutput = pytree_output_class("SequenceClassifierOutput")
MultipleChoiceModelOutput = pytree_output_class("MultipleChoiceModelOutput")
TokenClassifierOutput = pytree_output_class("TokenClassifierOutput")
QuestionAnsweringModelOutput = pytree_output_class("QuestionAnsweringModelOutput")
Seq2SeqModelOutput = pytree_output_class("Seq2SeqModelOutput")
Seq2SeqLMOutput = pytree_output_class("Seq2SeqLMOutput")
Seq2SeqSequenceClassifierOutput = pytree_output_class("Seq2SeqSequenceClassifierOutput")
Seq2SeqQuestionAnsweringModelOutput = pytree_output_class("Seq2SeqQuestionAnsweringModelOutput")
FlaxBertForPreTrainingOutput = pytree_output_class("BertForPreTrainingOutput")
FlaxBigBirdForPreTrainingOutput = pytree_output_class("BigBirdForPreTrainingOutput")
FlaxBigBirdForQuestionAnsweringModelOutput = pytree_output_class(
    "BigBirdForQuestionAnsweringModelOutput"
)


def finish_output(output: ModelOutput, return_dict: bool) -> ModelOutput | tuple:
    """The output object, or its non-None fields as a tuple when `return_dict=False`."""
    return output if return_dict else output.to_tuple()


# -- masks ---------------------------------------------------------------------------------------


def additive_mask(keep: jax.Array, dtype: Any) -> jax.Array:
    """Turn a keep-mask (1 = attend) into an additive bias: 0 where kept, the dtype's minimum
    elsewhere. A fully masked row then softmaxes to a uniform distribution, in every framework.
    """
    return (1.0 - keep.astype(dtype)) * jnp.finfo(dtype).min


def extended_attention_mask(
    attention_mask: jax.Array,
    query_length: int,
    dtype: Any,
    causal: bool,
    past_length: int | jax.Array | None = None,
) -> jax.Array:
    """`[B, K]` or `[B, Q, K]` keep-mask -> additive `[B, 1, Q or 1, K]` mask.

    With `causal`, query i (at position `past_length + i`) may only see keys up to its own
    position. `past_length` defaults to K - Q; with a preallocated cache it is the cache index
    (K is then the cache length, and the keys not written yet are masked by the causal rule).
    """
    if attention_mask.ndim == 3:
        keep = attention_mask[:, None, :, :]
    else:
        keep = attention_mask[:, None, None, :]
    if causal:
        key_length = attention_mask.shape[-1]
        past = key_length - query_length if past_length is None else past_length
        query_pos = past + jnp.arange(query_length)
        key_pos = jnp.arange(key_length)
        causal_keep = (key_pos[None, :] <= query_pos[:, None]).astype(keep.dtype)  # [Q, K]
        keep = keep * causal_keep[None, None]
    return additive_mask(keep, dtype)


def expand_head_mask(
    head_mask: jax.Array | None, num_layers: int, num_heads: int, dtype: Any
) -> list[jax.Array | None]:
    """`[heads]` or `[layers, heads]` -> per layer `[1, heads, 1, 1]` multipliers (or Nones)."""
    if head_mask is None:
        return [None] * num_layers
    head_mask = jnp.asarray(head_mask)
    checks.check_head_mask_shape(head_mask.shape, num_layers, num_heads)
    if head_mask.ndim == 1:
        head_mask = jnp.broadcast_to(head_mask[None], (num_layers, num_heads))
    return [head_mask[i].astype(dtype)[None, :, None, None] for i in range(num_layers)]


def is_concrete(x: Any) -> bool:
    """Whether `x` holds values now (not a tracer of `jax.jit`, `jax.grad`, ...)."""
    return not isinstance(x, jax.core.Tracer)


def check_ids(name: str, ids: jax.Array, size: int) -> None:
    """Raise a clear error for ids outside an embedding table (skipped while tracing)."""
    if ids.size == 0 or not is_concrete(ids):
        return
    if jnp.issubdtype(ids.dtype, jnp.floating):
        raise TypeError(f"{name} must hold integers, got {ids.dtype}")
    values = np.asarray(ids)
    checks.check_ids_in_range(name, int(values.min()), int(values.max()), size)


def normal_init(std: float):
    """The normal(0, std) initializer every weight matrix uses (as the PyTorch models)."""
    return jax.nn.initializers.normal(stddev=std)


def embedding_init(std: float, padding_idx: int | None):
    """normal(0, std) with the padding row zeroed, as `torch.nn.Embedding(padding_idx=...)`."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        table = jax.random.normal(key, shape, dtype) * std
        if padding_idx is not None and 0 <= padding_idx < shape[0]:
            table = table.at[padding_idx].set(0)
        return table

    return init


# -- layers ------------------------------------------------------------------------------------


def dense(
    features: int,
    config: PretrainedConfig,
    dtype: Any,
    use_bias: bool = True,
    layer_class: type[nn.Dense] = nn.Dense,
) -> nn.Dense:
    """A projection initialised as the reference: normal(`initializer_range`) kernel, zero bias
    (`layer_class`: a subclass of `nn.Dense` with its own call)."""
    return layer_class(
        features,
        use_bias=use_bias,
        kernel_init=normal_init(config.initializer_range),
        dtype=dtype,
    )


def embed(
    num_embeddings: int,
    features: int,
    config: PretrainedConfig,
    dtype: Any,
    padding_idx: int | None = None,
) -> nn.Embed:
    """An embedding table initialised normal(`initializer_range`), the padding row zero."""
    return nn.Embed(
        num_embeddings,
        features,
        embedding_init=embedding_init(config.initializer_range, padding_idx),
        dtype=dtype,
    )


def layer_norm(config: PretrainedConfig, dtype: Any) -> nn.LayerNorm:
    """A LayerNorm with the config's `layer_norm_eps`."""
    return nn.LayerNorm(epsilon=config.layer_norm_eps, dtype=dtype)


def classifier_dropout(config: PretrainedConfig) -> nn.Dropout:
    """Dropout before a classifier: `classifier_dropout`, or `hidden_dropout_prob` when unset."""
    rate = config.classifier_dropout
    return nn.Dropout(rate=config.hidden_dropout_prob if rate is None else rate)


# -- decoding: a preallocated key/value cache -------------------------------------------------------


class KeyValueCacheMixin(nn.Module):
    """What a decoder self-attention needs to decode with a preallocated cache (`init_cache`)."""

    @nn.compact  # the cache variables are created on first use, not in setup
    def concatenate_to_cache(
        self, key: jax.Array, value: jax.Array
    ) -> tuple[jax.Array, jax.Array, int | jax.Array]:
        """Write this step's keys and values into the preallocated cache at `cache_index`.

        Returns the whole cache `[B, N, max_length, D]` and the index the step was written at.
        The positions not written yet hold zeros; the causal mask hides them.
        """
        is_initialized = self.has_variable("cache", "cached_key")
        cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
        cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
        if not is_initialized:  # `init_cache`: only the shapes (of a max_length input) matter
            return key, value, 0
        past_length = cache_index.value
        step_length = key.shape[2]
        start = (0, 0, past_length, 0)
        key = jax.lax.dynamic_update_slice(
            cached_key.value, key.astype(cached_key.value.dtype), start
        )
        value = jax.lax.dynamic_update_slice(
            cached_value.value, value.astype(cached_value.value.dtype), start
        )
        cached_key.value = key
        cached_value.value = value
        cache_index.value = past_length + step_length
        return key, value, past_length

    def uses_cache(self, init_cache: bool) -> bool:
        """Whether this call decodes with the cache (or builds it, under `init_cache`)."""
        return self.has_variable("cache", "cached_key") or init_cache


def cache_positions(cache: dict) -> tuple[int | jax.Array, int]:
    """(tokens already cached, cache length) of a cache made by `init_cache`."""
    flat = traverse_util.flatten_dict(dict(cache))
    indices = [v for path, v in flat.items() if path[-1] == "cache_index"]
    keys = [v for path, v in flat.items() if path[-1] == "cached_key"]
    if not indices or not keys:
        raise ValueError("past_key_values is not a cache made by init_cache")
    return indices[0], int(keys[0].shape[2])


def check_cache_room(past_length: int | jax.Array, length: int, cache_length: int) -> None:
    """Raise a clear error when `length` new tokens do not fit behind the cached ones."""
    if is_concrete(past_length) and int(past_length) + length > cache_length:
        raise ValueError(
            f"{length} new tokens after {int(past_length)} cached ones do not fit in the "
            f"cache of length {cache_length} (see init_cache)"
        )


# -- the base class ------------------------------------------------------------------------------


def flatten_params(params: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
    """Nested parameter dict -> `{path tuple: array}`."""
    return traverse_util.flatten_dict(dict(params))


def canonical_names(paths) -> dict[str, tuple[tuple[str, ...], bool]]:
    """`{canonical name: (Flax path, transpose)}` for the given Flax parameter paths."""
    out = {}
    for path in paths:
        name, transpose = flax_to_canonical(path)
        out[name] = (path, transpose)
    return out


class FlaxPreTrainedModel:
    """Base of every aviary Flax model: holds `config`, the linen `module` and its `params`.

    Subclasses set `config_class`, `base_model_prefix`, `module_class` and `tied_weights` (pairs
    of canonical `(tied parameter, source parameter)` names, tied when
    `config.tie_word_embeddings`). A tied parameter is not a Flax parameter: the module computes
    with its source (the LM decoder with the word-embedding table), and checkpoints do not store it.
    """

    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    base_model_prefix: ClassVar[str] = ""
    module_class: ClassVar[type[nn.Module]]
    tied_weights: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(
        self,
        config: PretrainedConfig,
        input_shape: tuple[int, ...] = (1, 1),
        seed: int = 0,
        dtype: Any = jnp.float32,
        _do_init: bool = True,
        gradient_checkpointing: bool = False,
        **module_kwargs: Any,
    ) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self.dtype = dtype
        self.input_shape = tuple(input_shape)
        self.seed = seed
        self.key = jax.random.PRNGKey(seed)
        self._module_kwargs = module_kwargs
        self.module = self.module_class(
            config=config,
            dtype=dtype,
            gradient_checkpointing=gradient_checkpointing,
            **module_kwargs,
        )
        self._params: dict | None = None
        if _do_init:
            self._params = self._random_params()

    # -- construction ---------------------------------------------------------------------------
    def init_weights(
        self, rng: jax.Array, input_shape: tuple[int, ...], params: dict | None = None
    ) -> dict:
        """Random parameters from the config's initializer; entries of `params` are kept."""
        params_rng, dropout_rng = jax.random.split(rng)
        random_params = self.module.init(
            {"params": params_rng, "dropout": dropout_rng}, **self._dummy_inputs(input_shape)
        )["params"]
        if params is None:
            return random_params
        flat = traverse_util.flatten_dict(dict(random_params))
        given = traverse_util.flatten_dict(dict(params))
        flat.update({path: value for path, value in given.items() if path in flat})
        return traverse_util.unflatten_dict(flat)

    def _dummy_inputs(self, input_shape: tuple[int, ...]) -> dict[str, Any]:
        """The inputs that build the parameters (and, at `(batch, max_length)`, the cache)."""
        input_ids = jnp.zeros(input_shape, dtype="i4")
        inputs = {"input_ids": input_ids, "attention_mask": jnp.ones_like(input_ids)}
        if getattr(self.config, "add_cross_attention", False):
            batch = input_shape[0]
            inputs["encoder_hidden_states"] = jnp.zeros((batch, 1, self.config.hidden_size))
            inputs["encoder_attention_mask"] = jnp.ones((batch, 1), dtype="i4")
        return inputs

    def _cache_inputs(self, batch_size: int, max_length: int) -> dict[str, Any]:
        """The inputs whose `init_cache=True` call builds a cache of `max_length` tokens."""
        if not getattr(self.config, "is_decoder", False):
            raise ValueError("init_cache needs a decoder: build the config with is_decoder=True")
        return self._dummy_inputs((batch_size, max_length))

    def init_cache(self, batch_size: int, max_length: int) -> dict:
        """An empty key/value cache for decoding up to `max_length` tokens."""

        def init():
            inputs = self._cache_inputs(batch_size, max_length)
            return self.module.init(jax.random.PRNGKey(0), **inputs, init_cache=True)["cache"]

        shapes = jax.eval_shape(init)
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def _random_params(self) -> dict:
        # One compiled initialisation is much faster than running it op by op.
        return jax.jit(self.init_weights, static_argnums=1)(self.key, self.input_shape)

    @property
    def params(self) -> dict:
        if self._params is None:
            raise ValueError(
                "this model was built with _do_init=False and has no parameters: pass params= "
                "to the call, or set model.params"
            )
        return self._params

    @params.setter
    def params(self, params: dict) -> None:
        own = self.param_shapes()
        given = {k: tuple(v.shape) for k, v in flatten_params(params).items()}
        want = {k: tuple(v.shape) for k, v in own.items()}
        if given != want:
            missing = sorted("/".join(k) for k in set(want) - set(given))
            unexpected = sorted("/".join(k) for k in set(given) - set(want))
            shapes = sorted(
                f"{'/'.join(k)}: model {want[k]}, given {given[k]}"
                for k in set(want) & set(given)
                if want[k] != given[k]
            )
            raise ValueError(
                "params do not fit the model: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {', '.join(missing)}" if missing else "",
                        f"unexpected {', '.join(unexpected)}" if unexpected else "",
                        f"shapes {', '.join(shapes)}" if shapes else "",
                    )
                    if part
                )
            )
        self._params = params

    def param_shapes(self) -> dict[tuple[str, ...], jax.ShapeDtypeStruct]:
        """`{Flax path: shape and dtype}` of the parameters, without computing any."""
        abstract = jax.eval_shape(
            lambda key: self.init_weights(key, self.input_shape), jax.random.PRNGKey(0)
        )
        return flatten_params(abstract)

    def num_parameters(self, params: dict | None = None) -> int:
        """Number of parameters (a tied decoder is not a parameter in Flax)."""
        leaves = jax.tree_util.tree_leaves(self.params if params is None else params)
        return int(sum(np.prod(x.shape) for x in leaves))

    def to_bf16(self, params: dict) -> dict:
        """Cast floating parameters to bfloat16 (the computation dtype is the `dtype` argument)."""
        return _cast_floating(params, jnp.bfloat16)

    def to_fp16(self, params: dict) -> dict:
        return _cast_floating(params, jnp.float16)

    def to_fp32(self, params: dict) -> dict:
        return _cast_floating(params, jnp.float32)

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint_tensors(self, params: dict | None = None) -> dict[str, np.ndarray]:
        """The parameters under their canonical names and PyTorch layouts, as numpy arrays."""
        tensors = {}
        for path, value in flatten_params(self.params if params is None else params).items():
            name, transpose = flax_to_canonical(path)
            array = np.asarray(value)
            tensors[name] = np.ascontiguousarray(array.T if transpose else array)
        return tensors

    def load_checkpoint_tensors(
        self,
        tensors: Mapping[str, Any],
        *,
        strict: bool = True,
        ignore_mismatched_sizes: bool = False,
        source: str = "checkpoint",
    ) -> LoadReport:
        """Set the parameters from canonical-named tensors; see `LoadReport` for what strict
        means. Parameters of components the checkpoint lacks (a new head) are initialised."""
        shapes = self.param_shapes()
        own = canonical_names(shapes)
        report = match_checkpoint(
            {
                name: tuple(reversed(shapes[path].shape)) if transpose else shapes[path].shape
                for name, (path, transpose) in own.items()
            },
            {k: tuple(v.shape) for k, v in tensors.items()},
            base_model_prefix=self.base_model_prefix,
            tied=self._tied_names(),
            ignore_mismatched_sizes=ignore_mismatched_sizes,
        )
        if strict:
            report.raise_if_failed(source)
        if report.newly_initialized or len(report.mapping) < len(own):
            flat = flatten_params(self._random_params())
        else:
            flat = {}
        for model_name, ckpt_name in report.mapping.items():
            path, transpose = own[model_name]
            value = np.asarray(tensors[ckpt_name])
            value = value.T if transpose else value
            flat[path] = jnp.asarray(value, dtype=shapes[path].dtype)
        self._params = traverse_util.unflatten_dict(flat)
        return report

    def _tied_names(self) -> set[str]:
        tie = getattr(self.config, "tie_word_embeddings", True)
        return {tied for tied, _ in self.tied_weights} if tie else set()

    # -- calls ----------------------------------------------------------------------------------
    @staticmethod
    def given_inputs(**inputs: Any) -> dict[str, Any]:
        """The inputs of a call that are not None (so that a head module that does not take one
        raises a TypeError naming it), ids as arrays."""
        return {
            name: jnp.asarray(value) if name.endswith("_ids") else value
            for name, value in inputs.items()
            if value is not None
        }

    def apply_module(
        self,
        inputs: dict[str, Any],
        *,
        params: dict | None,
        dropout_rng: jax.Array | None,
        train: bool,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
        return_dict: bool | None,
        past_key_values: dict | None = None,
        method: Any = None,
    ) -> ModelOutput | tuple:
        """Apply the module to `inputs` with the call's flags (defaults from the config).

        `train=True` applies dropout with `dropout_rng`. With `past_key_values` (from
        `init_cache`, or a previous call's output) the call is a decoding step: the module writes
        the new tokens (the decoder's inputs, or the model's) into the cache and the output
        carries the updated cache as `past_key_values`.
        """
        output_attentions, output_hidden_states = resolve_output_flags(
            self.config, output_attentions, output_hidden_states
        )
        inputs = {
            **inputs,
            "deterministic": not train,
            "output_attentions": output_attentions,
            "output_hidden_states": output_hidden_states,
        }
        variables = {"params": self.params if params is None else params}
        rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
        return_dict = resolve_return_dict(self.config, return_dict)
        if past_key_values is None:
            output = self.module.apply(variables, **inputs, rngs=rngs, method=method)
            return finish_output(output, return_dict)

        names = ("decoder_input_ids", "decoder_inputs_embeds", "input_ids", "inputs_embeds")
        new = next((inputs[name] for name in names if name in inputs), None)
        past_length, cache_length = cache_positions(past_key_values)
        check_cache_room(past_length, 0 if new is None else new.shape[1], cache_length)
        variables["cache"] = past_key_values
        output, mutated = self.module.apply(
            variables,
            **inputs,
            past_length=past_length,
            cache_length=cache_length,
            rngs=rngs,
            mutable=["cache"],
            method=method,
        )
        output = output.replace(past_key_values=mutated["cache"])
        return finish_output(output, return_dict)

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike,
        *,
        config: PretrainedConfig | None = None,
        dtype: Any = jnp.float32,
        input_shape: tuple[int, ...] = (1, 1),
        seed: int = 0,
        strict: bool = True,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        **config_overrides: Any,
    ):
        """Load a model from a folder with `config.json` and weights in the reference layout.

        Reads `flax_model.msgpack` when the folder has one (the reference Flax order), otherwise
        the canonical `model.safetensors` (or `pytorch_model.bin`). A base model loads from a head
        checkpoint and a head model from a base checkpoint; strict loading raises
        `CheckpointError` naming missing, unexpected or mis-shaped tensors. `dtype` is the
        computation dtype; parameters stay in float32 (see `to_bf16`).
        """
        folder = Path(folder)
        if config is None:
            config = cls.config_class.from_pretrained(folder, **config_overrides)
        elif config_overrides:
            config = config.copy(**config_overrides)
        tensors, _ = read_model_weights(folder, "flax")
        model = cls(config, input_shape=input_shape, seed=seed, dtype=dtype, _do_init=False)
        report = model.load_checkpoint_tensors(
            tensors,
            strict=strict,
            ignore_mismatched_sizes=ignore_mismatched_sizes,
            source=str(folder),
        )
        info = {
            "missing_keys": report.missing,
            "unexpected_keys": report.unexpected,
            "mismatched_keys": report.mismatched,
            "newly_initialized_keys": report.newly_initialized,
            "discarded_keys": report.discarded,
        }
        model.loading_info = info
        return (model, info) if output_loading_info else model

    def save_pretrained(
        self,
        folder: str | os.PathLike,
        params: dict | None = None,
        *,
        max_shard_size: int | str | None = "10GB",
    ) -> Path:
        """Write `config.json` and the canonical `model.safetensors` (PyTorch names and layouts;
        a tied LM decoder is not stored). `architectures` names the PyTorch class, as the
        reference Flax models write it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = self.config.copy(architectures=[type(self).__name__.removeprefix("Flax")])
        write_checkpoint(
            self.checkpoint_tensors(params), folder, framework="np", max_shard_size=max_shard_size
        )
        config.save_pretrained(folder)
        return folder


def _cast_floating(params: dict, dtype: Any) -> dict:
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, params
    )


# -- losses for training loops (the Flax heads return logits only) --------------------------------

IGNORE_INDEX = -100


def classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean cross-entropy over the last axis (next-sentence prediction, multiple choice); labels
    of -100 are ignored (NaN if all are)."""
    logits = logits.reshape(-1, logits.shape[-1]).astype(jnp.float32)
    labels = labels.reshape(-1)
    keep = labels != IGNORE_INDEX
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    picked = jnp.take_along_axis(log_probs, jnp.where(keep, labels, 0)[:, None], axis=-1)[:, 0]
    return -jnp.sum(jnp.where(keep, picked, 0.0)) / jnp.sum(keep)


def masked_lm_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy over the vocabulary; labels of -100 are ignored."""
    checks.check_same_shape("labels", labels.shape, logits.shape[:-1], "the input ids")
    return classification_loss(logits, labels)


def causal_lm_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Next-token cross-entropy: position t predicts label t + 1 (labels are not pre-shifted)."""
    checks.check_same_shape("labels", labels.shape, logits.shape[:-1], "the input ids")
    return masked_lm_loss(logits[:, :-1], labels[:, 1:])


def sequence_classification_loss(
    logits: jax.Array, labels: jax.Array, config: PretrainedConfig
) -> jax.Array:
    """Regression (MSE), single-label (cross-entropy) or multi-label (BCE) by `problem_type`."""
    num_labels = logits.shape[-1]
    integer_labels = not jnp.issubdtype(labels.dtype, jnp.floating)
    problem_type = checks.resolve_problem_type(config.problem_type, num_labels, integer_labels)
    logits = logits.astype(jnp.float32)
    if problem_type == "regression":
        if num_labels == 1:
            return jnp.mean((logits.squeeze(-1) - labels.squeeze(-1).astype(jnp.float32)) ** 2)
        return jnp.mean((logits - labels.astype(jnp.float32)) ** 2)
    if problem_type == "single_label_classification":
        return classification_loss(logits, labels.astype(jnp.int32))
    checks.check_same_shape("labels", labels.shape, logits.shape, "the logits")
    targets = labels.astype(jnp.float32)
    # log(1 + exp(-|x|)) keeps the binary cross-entropy finite for large logits
    per_label = jnp.maximum(logits, 0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    return jnp.mean(per_label)


def token_classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy per token; labels of -100 are ignored."""
    return masked_lm_loss(logits, labels)


def span_loss(
    start_logits: jax.Array,
    end_logits: jax.Array,
    start_positions: jax.Array,
    end_positions: jax.Array,
) -> jax.Array:
    """Mean of the start and end cross-entropies. Positions outside the sequence are clamped to
    the sequence length and then ignored."""
    length = start_logits.shape[1]

    def one_side(logits: jax.Array, positions: jax.Array) -> jax.Array:
        positions = jnp.clip(positions.reshape(-1), 0, length)
        return classification_loss(logits, jnp.where(positions == length, IGNORE_INDEX, positions))

    return (one_side(start_logits, start_positions) + one_side(end_logits, end_positions)) / 2


cross_entropy_loss = classification_loss  # the earlier name
