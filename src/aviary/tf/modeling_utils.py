"""TensorFlow / Keras 3 base class: building, loading and saving models; shared helpers.

A Keras variable's path with the model's own scope removed (`bert/encoder/layer_._0/.../kernel`) maps
to its canonical checkpoint name through `aviary.core.naming.tf_to_canonical`, so loading is a matter
of lining up names (`aviary.conversion.match_checkpoint`) and assigning (transposed) arrays.
Parallel text of `aviary.pt.modeling_utils`.
"""

from __future__ import annotations

import functools
import inspect
import os
import types
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from aviary.conversion.checkpoint import (
    CheckpointError,
    LoadReport,
    match_checkpoint,
    write_checkpoint,
)
from aviary.conversion.formats import read_model_weights, register_for_conversion
from aviary.core import checks
from aviary.core.configs import PretrainedConfig
from aviary.core.io import atomic_path
from aviary.core.naming import tf_to_canonical
from aviary.core.outputs import (
    ModelOutput,
    head_output,
    output_class,
    resolve_return_dict,
)

# -- activations ---------------------------------------------------------------------------------


def _gelu(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=False)


def _gelu_new(x: tf.Tensor) -> tf.Tensor:
    # tanh approximation of GELU (the original GPT-2/BigBird formula)
    return tf.nn.gelu(x, approximate=True)


def _gelu_fast(x: tf.Tensor) -> tf.Tensor:
    return 0.5 * x * (1.0 + tf.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _quick_gelu(x: tf.Tensor) -> tf.Tensor:
    return x * tf.sigmoid(1.702 * x)


def _mish(x: tf.Tensor) -> tf.Tensor:
    return x * tf.tanh(tf.nn.softplus(x))


ACT2FN = {
    "gelu": _gelu,
    "gelu_new": _gelu_new,
    "gelu_pytorch_tanh": _gelu_new,
    "gelu_fast": _gelu_fast,
    "quick_gelu": _quick_gelu,
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "selu": tf.nn.selu,
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "mish": _mish,
    "linear": lambda x: x,
}


def get_activation(name_or_fn: Any):
    """The activation function a config names (or the callable it holds)."""
    return name_or_fn if callable(name_or_fn) else ACT2FN[name_or_fn]


# -- outputs -------------------------------------------------------------------------------------


class TFModelOutput(ModelOutput, MutableMapping):
    """`ModelOutput` that can leave a `tf.function`: tf.nest rebuilds a mapping by calling its
    type with one iterable of `(field, value)` pairs, and prefers mutable mappings."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) == 1 and not kwargs and isinstance(args[0], (types.GeneratorType, dict)):
            kwargs = dict(args[0])
            args = ()
        super().__init__(*args, **kwargs)

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._fields:
            raise KeyError(key)
        object.__setattr__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self[key] = None


def tf_output_class(name: str) -> type[ModelOutput]:
    """The TF output class `TF<name>` with the field list of `name`."""
    return type(f"TF{name}", (output_class(name, TFModelOutput),), {})


# The output classes of every model (fields: `aviary.core.outputs.OUTPUT_FIELDS`).
TFBaseModelOutput = tf_output_class("BaseModelOutput")
TFBaseModelOutputWithPastAndCrossAttentions = tf_output_class(
    "BaseModelOutputWithPastAndCrossAttentions"
)
TFBaseModelOutputWithPoolingAndCrossAttentions = tf_output_class(
    "BaseModelOutputWithPoolingAndCrossAttentions"
)
TFCausalLMOutputWithCrossAttentions = tf_output_class("CausalLMOutputWithCrossAttentions")
TFMaskedLMOutput = tf_output_class("MaskedLMOutput")
TFNextSentencePredictorOutput = tf_output_class("NextSentencePredictorOutput")
TFSequenceClassifierOutput = tf_output_class("SequenceClassifierOutput")
TFMultipleChoiceModelOutput = tf_output_class("MultipleChoiceModelOutput")
TFTokenClassifierOutput = tf_output_class("TokenClassifierOutput")
TFQuestionAnsweringModelOutput = tf_output_class("QuestionAnsweringModelOutput")
TFSeq2SeqModelOutput = tf_output_class("Seq2SeqModelOutput")
TFSeq2SeqLMOutput = tf_output_class("Seq2SeqLMOutput")
TFSeq2SeqSequenceClassifierOutput = tf_output_class("Seq2SeqSequenceClassifierOutput")
TFSeq2SeqQuestionAnsweringModelOutput = tf_output_class("Seq2SeqQuestionAnsweringModelOutput")
TFBertForPreTrainingOutput = tf_output_class("BertForPreTrainingOutput")
TFBigBirdForPreTrainingOutput = tf_output_class("BigBirdForPreTrainingOutput")
TFBigBirdForQuestionAnsweringModelOutput = tf_output_class("BigBirdForQuestionAnsweringModelOutput")


# -- inputs --------------------------------------------------------------------------------------


def python_bool(name: str, value: Any) -> bool:
    """A call flag that must be known while tracing (BigBird's `training` chooses the
    block-sparse plan): a Python bool, or an eager tensor."""
    if isinstance(value, tf.Tensor):
        if not tf.executing_eagerly():
            raise ValueError(
                f"BigBird attention needs {name} as a Python bool (it chooses the block-sparse "
                "plan while tracing), got a symbolic tensor"
            )
        value = value.numpy()
    return bool(value)


def unpack_inputs(call):
    """Accept the reference's three input formats in a model's `call`.

    `model(input_ids)`, `model([input_ids, attention_mask, ...])` (in signature order) and
    `model({"input_ids": ..., "labels": ...})` (what `fit` passes) all become keyword arguments.
    """
    names = [n for n in inspect.signature(call).parameters if n != "self"]

    @functools.wraps(call)
    def wrapper(self, input_ids=None, *args, **kwargs):
        if isinstance(input_ids, (dict, MutableMapping)):
            unknown = sorted(set(input_ids) - set(names))
            if unknown:
                raise ValueError(f"{type(self).__name__} got unknown inputs: {', '.join(unknown)}")
            twice = sorted(set(input_ids) & set(kwargs))
            if twice:
                raise ValueError(f"inputs given twice: {', '.join(twice)}")
            kwargs = {**kwargs, **input_ids}
            input_ids = kwargs.pop("input_ids", None)
        elif isinstance(input_ids, (list, tuple)):
            if len(input_ids) > len(names):
                raise ValueError(f"{type(self).__name__} takes at most {len(names)} inputs")
            given = dict(zip(names, input_ids))
            kwargs = {**kwargs, **given}
            input_ids = kwargs.pop("input_ids", None)
        return call(self, input_ids, *args, **kwargs)

    return wrapper


def static_shape(x: tf.Tensor) -> tuple[int, ...] | None:
    """The shape as Python ints, or None where some dimension is only known at run time."""
    shape = x.shape
    if shape.rank is None or any(d is None for d in shape):
        return None
    return tuple(int(d) for d in shape)


def check_ids(name: str, ids: tf.Tensor, size: int) -> None:
    """Raise a clear error for ids outside an embedding table (eager only: in a graph the values
    are not known while tracing)."""
    if ids.dtype.is_floating:
        raise TypeError(f"{name} must hold integers, got {ids.dtype.name}")
    if not tf.executing_eagerly() or int(tf.size(ids)) == 0:
        return
    checks.check_ids_in_range(name, int(tf.reduce_min(ids)), int(tf.reduce_max(ids)), size)


def check_shape(name: str, x: tf.Tensor, expected: tuple[int | None, ...], what: str) -> None:
    """`checks.check_same_shape`, where both shapes are known while tracing."""
    shape = static_shape(x)
    if shape is not None and all(d is not None for d in expected):
        checks.check_same_shape(name, shape, expected, what)


def check_mask_shape(
    name: str, mask: tf.Tensor, batch: Any, query_length: Any, key_length: Any
) -> None:
    """`checks.check_attention_mask_shape`, where the mask's and every size are known while
    tracing."""
    shape = static_shape(mask)
    if shape is not None and all(isinstance(s, int) for s in (batch, query_length, key_length)):
        checks.check_attention_mask_shape(shape, batch, query_length, key_length, name)


def shape_list(x: tf.Tensor) -> list:
    """Each dimension as a Python int where known, else as a scalar tensor."""
    dynamic = tf.shape(x)
    return [dynamic[i] if d is None else d for i, d in enumerate(x.shape.as_list())]


# -- masks ---------------------------------------------------------------------------------------


def additive_mask(keep: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Turn a keep-mask (1 = attend) into an additive bias: 0 where kept, the dtype's minimum
    elsewhere. A fully masked row then softmaxes to a uniform distribution, in every framework.
    """
    return (1.0 - tf.cast(keep, dtype)) * dtype.min


def extended_attention_mask(
    attention_mask: tf.Tensor,
    query_length: int | tf.Tensor,
    dtype: tf.DType,
    causal: bool,
) -> tf.Tensor:
    """`[B, K]` or `[B, Q, K]` keep-mask -> additive `[B, 1, Q or 1, K]` mask.

    With `causal`, query i (at position K - Q + i) may only see keys up to its own position.
    """
    keep = tf.cast(attention_mask, dtype)
    if attention_mask.shape.rank == 3:
        keep = keep[:, None, :, :]
    else:
        keep = keep[:, None, None, :]
    if causal:
        key_length = tf.shape(attention_mask)[-1]
        past = key_length - query_length
        query_pos = tf.range(past, key_length)
        key_pos = tf.range(key_length)
        causal_keep = tf.cast(key_pos[None, :] <= query_pos[:, None], dtype)  # [Q, K]
        keep = keep * causal_keep[None, None]
    return additive_mask(keep, dtype)


def expand_head_mask(
    head_mask: tf.Tensor | None, num_layers: int, num_heads: int, dtype: tf.DType
) -> list[tf.Tensor | None]:
    """`[heads]` or `[layers, heads]` -> per layer `[1, heads, 1, 1]` multipliers (or Nones)."""
    if head_mask is None:
        return [None] * num_layers
    head_mask = tf.convert_to_tensor(head_mask)
    checks.check_head_mask_shape(head_mask.shape.as_list(), num_layers, num_heads)
    if head_mask.shape.rank == 1:
        head_mask = tf.broadcast_to(head_mask[None], (num_layers, num_heads))
    return [tf.cast(head_mask[i], dtype)[None, :, None, None] for i in range(num_layers)]


# -- losses shared by the heads of every family --------------------------------------------------
# Every loss is the mean over the counted examples (a scalar), like PyTorch, so that the three
# frameworks and the reference goldens agree; the reference TF returned per-example losses.

IGNORE_INDEX = -100


def _cross_entropy(
    logits: tf.Tensor, labels: tf.Tensor, ignore_index: int | tf.Tensor
) -> tf.Tensor:
    """Mean cross-entropy of `[N, C]` logits against `[N]` labels, skipping `ignore_index`.

    With every label ignored the loss is 0 (PyTorch gives NaN), so such a batch leaves training
    unharmed.
    """
    labels = tf.cast(labels, tf.int32)
    active = tf.not_equal(labels, tf.cast(ignore_index, tf.int32))
    safe_labels = tf.where(active, labels, tf.zeros_like(labels))
    per_item = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=safe_labels, logits=tf.cast(logits, tf.float32)
    )
    active = tf.cast(active, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(per_item * active), tf.reduce_sum(active))


def masked_lm_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy over the vocabulary; labels of -100 are ignored."""
    check_shape("labels", labels, tuple(logits.shape[:-1]), "the input ids")
    num_classes = shape_list(logits)[-1]
    return _cross_entropy(
        tf.reshape(logits, (-1, num_classes)), tf.reshape(labels, (-1,)), IGNORE_INDEX
    )


def causal_lm_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Next-token cross-entropy: position t predicts label t + 1 (labels are not pre-shifted)."""
    check_shape("labels", labels, tuple(logits.shape[:-1]), "the input ids")
    return masked_lm_loss(logits[:, :-1], labels[:, 1:])


def classification_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Plain cross-entropy of `[B, C]` logits against `[B]` (or `[B, 1]`) class labels."""
    return _cross_entropy(logits, tf.reshape(labels, (-1,)), IGNORE_INDEX)


def sequence_classification_loss(
    logits: tf.Tensor, labels: tf.Tensor, config: PretrainedConfig
) -> tf.Tensor:
    """Regression (MSE), single-label (cross-entropy) or multi-label (BCE) by `problem_type`."""
    num_labels = logits.shape[-1]
    integer_labels = not labels.dtype.is_floating
    problem_type = checks.resolve_problem_type(config.problem_type, num_labels, integer_labels)
    logits = tf.cast(logits, tf.float32)
    if problem_type == "regression":
        labels = tf.cast(labels, tf.float32)
        if num_labels == 1:
            return tf.reduce_mean(tf.square(tf.reshape(logits, (-1,)) - tf.reshape(labels, (-1,))))
        return tf.reduce_mean(tf.square(logits - labels))
    if problem_type == "single_label_classification":
        return classification_loss(logits, labels)
    check_shape("labels", labels, tuple(logits.shape), "the logits")
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits)
    )


def token_classification_loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy per token; labels of -100 are ignored."""
    return masked_lm_loss(logits, labels)


def span_loss(
    start_logits: tf.Tensor,
    end_logits: tf.Tensor,
    start_positions: tf.Tensor,
    end_positions: tf.Tensor,
) -> tf.Tensor:
    """Mean of the start and end cross-entropies. Positions outside the sequence are clamped to
    the sequence length and then ignored."""
    length = tf.shape(start_logits)[1]
    start_positions = tf.clip_by_value(
        tf.reshape(tf.cast(start_positions, tf.int32), (-1,)), 0, length
    )
    end_positions = tf.clip_by_value(tf.reshape(tf.cast(end_positions, tf.int32), (-1,)), 0, length)
    start = _cross_entropy(start_logits, start_positions, length)
    end = _cross_entropy(end_logits, end_positions, length)
    return (start + end) / 2


def span_outputs(
    logits: tf.Tensor,
    start_positions: tf.Tensor | None = None,
    end_positions: tf.Tensor | None = None,
) -> dict[str, tf.Tensor | None]:
    """A span head's `[B, L, 2]` logits -> its output fields: the start and end logits `[B, L]`
    and their `span_loss` (None unless both positions are given)."""
    start_logits, end_logits = tf.unstack(logits, axis=-1)
    loss = None
    if start_positions is not None and end_positions is not None:
        loss = span_loss(start_logits, end_logits, start_positions, end_positions)
    return {"loss": loss, "start_logits": start_logits, "end_logits": end_logits}


def vocabulary_logits(
    decoder: keras.layers.Dense | None, word_embeddings: tf.Tensor, hidden_states: tf.Tensor
) -> tf.Tensor:
    """Vocabulary logits `[..., V]`: an untied config's own `decoder`, else the tied
    word-embedding matrix `[V, H]` (which then has no variable of its own in the head)."""
    if decoder is not None:
        return decoder(hidden_states)
    weight = tf.cast(word_embeddings, hidden_states.dtype)  # [V, H]
    return tf.einsum("...h,vh->...v", hidden_states, weight)


# -- layers --------------------------------------------------------------------------------------


def dense(
    units: int, config: PretrainedConfig, name: str, use_bias: bool = True
) -> keras.layers.Dense:
    """A projection initialised as the reference: normal(`initializer_range`) kernel, zero bias."""
    return keras.layers.Dense(
        units,
        use_bias=use_bias,
        kernel_initializer=keras.initializers.RandomNormal(stddev=config.initializer_range),
        name=name,
    )


def embedding(
    rows: int,
    width: int,
    config: PretrainedConfig,
    name: str,
    layer_class: type[keras.layers.Embedding] = keras.layers.Embedding,
    **kwargs: Any,
) -> keras.layers.Embedding:
    """An embedding table (a `layer_class`, given `kwargs`) initialised as the reference:
    normal(`initializer_range`)."""
    return layer_class(
        rows,
        width,
        embeddings_initializer=keras.initializers.RandomNormal(stddev=config.initializer_range),
        name=name,
        **kwargs,
    )


def layer_norm(
    config: PretrainedConfig, name: str = "LayerNorm"
) -> keras.layers.LayerNormalization:
    """A LayerNorm with the config's `layer_norm_eps`."""
    return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=name)


def classifier_dropout(config: PretrainedConfig) -> keras.layers.Dropout:
    """Dropout before a classifier: `classifier_dropout`, or `hidden_dropout_prob` when unset."""
    rate = config.classifier_dropout
    return keras.layers.Dropout(config.hidden_dropout_prob if rate is None else rate)


class LazyBuildLayer(keras.layers.Layer):
    """A layer made of sublayers that create their variables on their first call.

    They are called inside this layer's name scope, so variable paths follow the attribute names.
    Keras would otherwise build a layer without a `build` method by tracing `call` symbolically
    first, which costs seconds for a whole model and adds nothing.
    """

    def build(self, input_shape=None) -> None:
        self.built = True


# -- the base class ------------------------------------------------------------------------------


def _strip_model_scope(path: str) -> str:
    """`tf_bert_model/embeddings/...` -> `embeddings/...` (the model's own name goes)."""
    return path.split("/", 1)[1] if "/" in path else path


class TFPreTrainedModel(keras.Model):
    """Base of every aviary Keras model.

    Subclasses set `config_class`, `base_model_prefix`, `base_model_class` (the backbone a head
    builds under the attribute `base_model_prefix`) and `tied_weights` (pairs of canonical
    `(tied weight, source weight)` names, tied when `config.tie_word_embeddings`), and define
    `dummy_inputs` (a call that creates every variable). A tied weight has no variable in Keras:
    the layer that uses it is handed its source at call time (the LM head gets the word
    embeddings). Labels travel in the input dictionary and the model computes its own loss, so
    `compile(optimizer=...)` and `fit(dataset)` train with no loss argument.
    """

    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    base_model_prefix: ClassVar[str] = ""
    base_model_class: ClassVar[type[TFPreTrainedModel] | None] = None
    tied_weights: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every model class can be read back from a `.keras` file (registered as `aviary>Name`).
        super().__init_subclass__(**kwargs)
        keras.saving.register_keras_serializable(package="aviary")(cls)

    def __init__(self, config: PretrainedConfig, **kwargs: Any) -> None:
        if isinstance(config, dict):  # from `get_config`
            config = self.config_class.from_dict(config)
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        super().__init__(**kwargs)
        self.config = config

    def __call__(self, *args, **kwargs):
        # Keras takes only tensors, lists and plain dicts positionally: its `tree` does not see
        # into a dict subclass such as the tokenizer's `BatchEncoding`, so `model(inputs)` would
        # be refused. A plain dict of the same items reaches `unpack_inputs` instead.
        if args and isinstance(args[0], Mapping) and type(args[0]) is not dict:
            args = (dict(args[0]), *args[1:])
        return super().__call__(*args, **kwargs)

    # -- construction ---------------------------------------------------------------------------
    @property
    def initializer_range(self) -> float:
        return getattr(self.config, "initializer_range", getattr(self.config, "init_std", 0.02))

    def dummy_inputs(self) -> dict[str, Any]:
        """A small input that reaches every layer (so that every variable exists)."""
        return {"input_ids": tf.constant([[1, 2, 3]], dtype=tf.int32)}

    def build(self, input_shape=None) -> None:
        # Variables are created by the first call (see `LazyBuildLayer`).
        self.built = True

    def build_with_dummies(self) -> None:
        """Create every variable by running the model once, eagerly, on `dummy_inputs`."""
        if not self.weights:
            self(**self.dummy_inputs(), training=False)

    def get_build_config(self) -> dict[str, Any]:
        return {"dummy_inputs": True}

    def build_from_config(self, config: dict[str, Any]) -> None:
        # `.keras` loading: the variables are created by a real call, not from shapes.
        self.build_with_dummies()

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "config": self.config.to_dict(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        config = dict(config)
        dtype = config.pop("dtype", None)
        if isinstance(dtype, dict):
            dtype = keras.saving.deserialize_keras_object(dtype)
        return cls(config.pop("config"), dtype=dtype, **config)

    def num_parameters(self) -> int:
        """Number of parameters."""
        return int(sum(np.prod(v.shape) for v in self.weights))

    def _base_model(self) -> TFPreTrainedModel:
        # A method, not a property as in PyTorch: Keras's `.keras` saving walks the attributes,
        # and one that returns the model itself would send it round in circles.
        return getattr(self, self.base_model_prefix, self)

    def _forget_traced_functions(self) -> None:
        # Keras traces `fit` / `evaluate` / `predict` once; their graphs hold the settings of
        # that time (BigBird's attention type and block-sparse plan).
        self.train_function = self.test_function = self.predict_function = None

    # -- heads ----------------------------------------------------------------------------------
    def head_output(
        self,
        output_class: type[ModelOutput],
        base_outputs: ModelOutput | None,
        return_dict: bool | None,
        **fields: Any,
    ) -> ModelOutput | tuple:
        """A head's output: its own `fields` (loss, logits, ...) plus the base model's hidden
        states, attentions, cache, ... (`aviary.core.outputs.head_output`); `return_dict`
        defaults to the config's."""
        return head_output(
            output_class, base_outputs, resolve_return_dict(self.config, return_dict), **fields
        )

    def _tied_names(self) -> set[str]:
        tie = getattr(self.config, "tie_word_embeddings", True)
        return {tied for tied, _ in self.tied_weights} if tie else set()

    # -- checkpoints ----------------------------------------------------------------------------
    def canonical_variables(self) -> dict[str, tuple[keras.Variable, bool]]:
        """`{canonical name: (variable, transpose)}` for every variable of the model."""
        self.build_with_dummies()
        out: dict[str, tuple[keras.Variable, bool]] = {}
        for variable in self.weights:
            name, transpose = tf_to_canonical(_strip_model_scope(variable.path))
            if name in out:
                raise RuntimeError(f"two variables map to the canonical name {name}")
            out[name] = (variable, transpose)
        return out

    def checkpoint_tensors(self) -> dict[str, np.ndarray]:
        """The model's weights as canonical numpy arrays (PyTorch names and layouts). The tied
        LM decoder has no variable of its own, so it is stored once, as the word embeddings."""
        tensors = {}
        for name, (variable, transpose) in self.canonical_variables().items():
            value = np.asarray(variable.numpy())
            tensors[name] = np.ascontiguousarray(value.T if transpose else value)
        return tensors

    def load_checkpoint_tensors(
        self,
        tensors: dict[str, np.ndarray],
        *,
        strict: bool = True,
        ignore_mismatched_sizes: bool = False,
        source: str = "checkpoint",
    ) -> LoadReport:
        """Assign canonical-named arrays to the model; see `LoadReport` for what strict means."""
        own = self.canonical_variables()
        shapes = {}
        for name, (variable, transpose) in own.items():
            shape = tuple(variable.shape)
            shapes[name] = shape[::-1] if transpose else shape
        report = match_checkpoint(
            shapes,
            {k: tuple(v.shape) for k, v in tensors.items()},
            base_model_prefix=self.base_model_prefix,
            tied=self._tied_names(),
            ignore_mismatched_sizes=ignore_mismatched_sizes,
        )
        if strict:
            report.raise_if_failed(source)
        for model_name, ckpt_name in report.mapping.items():
            variable, transpose = own[model_name]
            value = np.asarray(tensors[ckpt_name])
            variable.assign(np.asarray(value.T if transpose else value, dtype=variable.dtype))
        return report

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike,
        *,
        config: PretrainedConfig | None = None,
        strict: bool = True,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        **config_overrides: Any,
    ):
        """Load a model from a folder with `config.json` and canonical weights
        (`model.safetensors`, sharded or not, or `pytorch_model.bin`) or the reference's
        `tf_model.h5`.

        A base model loads from a head checkpoint and a head model from a base checkpoint; the
        head tensors that had to be created are listed in the loading info
        (`output_loading_info=True` returns `(model, info)`). Strict loading raises
        `CheckpointError` for missing, unexpected or mis-shaped tensors.
        """
        folder = Path(folder)
        if config is None:
            config = cls.config_class.from_pretrained(folder, **config_overrides)
        elif config_overrides:
            config = config.copy(**config_overrides)
        tensors, _ = read_model_weights(folder, "tf")
        model = cls(config)
        model.build_with_dummies()
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
        self, folder: str | os.PathLike, *, max_shard_size: int | str | None = "5GB"
    ) -> Path:
        """Write `config.json` and canonical `model.safetensors` (sharded above
        `max_shard_size`); PyTorch and Flax load the folder as it is."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # The checkpoint is framework-neutral: it names the PyTorch class, as the reference did.
        name = type(self).__name__
        config = self.config.copy(architectures=[name[2:] if name.startswith("TF") else name])
        write_checkpoint(
            self.checkpoint_tensors(), folder, framework="np", max_shard_size=max_shard_size
        )
        config.save_pretrained(folder)
        return folder

    # -- training with `fit` --------------------------------------------------------------------
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The model's own loss (labels in the input dict), or the compiled loss when one was
        given to `compile` and targets come separately."""
        if self._compile_loss is not None and y is not None:
            return super().compute_loss(x, y, first_prediction(y_pred), sample_weight, training)
        loss = y_pred.get("loss") if isinstance(y_pred, ModelOutput) else None
        if loss is None:
            raise ValueError(
                f"{type(self).__name__} computed no loss: put the labels in the input dictionary "
                "(for example {'input_ids': ..., 'labels': ...}) or pass a loss to compile()"
            )
        for extra in self.losses:  # regularisers, add_loss
            loss = loss + tf.cast(extra, loss.dtype)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Compiled metrics compare the labels from the input dict with the first prediction.
        if y is None and isinstance(x, dict):
            y = x.get("labels")
        return super().compute_metrics(x, y, first_prediction(y_pred), sample_weight)

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        output = self(x, training=False)
        # Keras concatenates the batches of plain dicts.
        return dict(output) if isinstance(output, ModelOutput) else output


def first_prediction(y_pred: Any) -> Any:
    """The first output that is not the loss (`logits`, `start_logits`, ...)."""
    if isinstance(y_pred, ModelOutput):
        return next(value for key, value in y_pred.items() if key != "loss")
    return y_pred


# -- Keras `.keras` files as a checkpoint format (used by `aviary convert`) ----------------------


@register_for_conversion  # `aviary convert` reads `.keras` files with it
def load_keras_model(path: str | os.PathLike) -> TFPreTrainedModel:
    """Load a `.keras` file written from an aviary TF model (its classes register on import)."""
    # Importing the model modules registers their serializable classes.
    import aviary.tf.bert
    import aviary.tf.big_bird
    import aviary.tf.big_bird_pegasus  # noqa: F401

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises many types for foreign or corrupt archives
        raise CheckpointError(
            f"{path} is not a readable .keras file of an aviary model: {err}"
        ) from None
    if not isinstance(model, TFPreTrainedModel):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not an aviary model")
    return model


@register_for_conversion  # `aviary convert` writes `.keras` files with it
def save_keras_model(
    tensors: dict[str, np.ndarray], config: PretrainedConfig, path: str | os.PathLike
) -> Path:
    """Build the TF class `config.architectures` names, load `tensors` strictly, save `.keras`."""
    import aviary.tf

    architecture = (config.architectures or ["BertModel"])[0]
    cls = getattr(aviary.tf, "TF" + architecture)
    model = cls(config)
    model.build_with_dummies()
    model.load_checkpoint_tensors(tensors, strict=True, source="the converted weights")
    path = Path(path)
    with atomic_path(path) as tmp:
        keras_tmp = tmp.with_name(tmp.name + ".keras")  # Keras insists on the suffix
        try:
            model.save(keras_tmp)
            os.replace(keras_tmp, tmp)
        finally:
            keras_tmp.unlink(missing_ok=True)
    return path
