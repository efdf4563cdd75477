"""Importers for the original Google TensorFlow checkpoints of BERT, BigBird (pretraining and the
TriviaQA model) and BigBirdPegasus, into the canonical format (reference PyTorch names and layouts).

Each family has an explicit name table: rows of (original name pattern -> canonical name pattern,
transform). `{layer}` in a pattern stands for a layer index. Every variable of a checkpoint must be
matched by exactly one row or be optimizer / bookkeeping state (`SKIPPED_COMPONENTS`); every tensor
the target model needs must be produced. Anything else is a `CheckpointError` that names the
variables, so nothing is dropped silently. docs/original_checkpoints.md explains the tables.

TensorFlow is imported only inside the functions that read checkpoints.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aviary.conversion.checkpoint import CheckpointError, write_checkpoint
from aviary.core.configs import (
    BertConfig,
    BigBirdConfig,
    BigBirdPegasusConfig,
    PretrainedConfig,
    read_config_file,
)

# -- transforms: original layout -> canonical layout ---------------------------------------------


def _copy(array: np.ndarray, heads: int) -> np.ndarray:
    return array


def _transpose(array: np.ndarray, heads: int) -> np.ndarray:
    """A 2-D dense kernel `[in, out]` becomes a `[out, in]` weight."""
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D kernel, got shape {array.shape}")
    return array.T


def _projection_kernel(array: np.ndarray, heads: int) -> np.ndarray:
    """q/k/v kernel: `[H, H]`, or `[H, heads, head_dim]` in older checkpoints and Keras models."""
    if array.ndim == 3:
        if array.shape[1] != heads:
            raise ValueError(
                f"3-D kernel {array.shape} has {array.shape[1]} heads, the config says {heads}"
            )
        array = array.reshape(array.shape[0], -1)
    return _transpose(array, heads)


def _projection_bias(array: np.ndarray, heads: int) -> np.ndarray:
    """q/k/v bias: `[H]`, or `[heads, head_dim]` next to a 3-D kernel."""
    if array.ndim == 2:
        if array.shape[0] != heads:
            raise ValueError(
                f"2-D bias {array.shape} has {array.shape[0]} heads, the config says {heads}"
            )
        return array.reshape(-1)
    return array


def _attention_output_kernel(array: np.ndarray, heads: int) -> np.ndarray:
    """Attention output kernel: `[H, H]`, or `[heads, head_dim, H]` in older checkpoints."""
    if array.ndim == 3:
        if array.shape[0] != heads:
            raise ValueError(
                f"3-D kernel {array.shape} has {array.shape[0]} heads, the config says {heads}"
            )
        array = array.reshape(-1, array.shape[-1])
    return _transpose(array, heads)


TRANSFORMS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "copy": _copy,
    "transpose": _transpose,
    "projection_kernel": _projection_kernel,
    "projection_bias": _projection_bias,
    "attention_output_kernel": _attention_output_kernel,
}


@dataclass(frozen=True)
class NameRule:
    """One row of a name table.

    `canonical` may name several tensors (the one Pegasus position table feeds the encoder and the
    decoder). `only_with_bias`: the row is an attention bias that the canonical model has only when
    `config.use_bias` is true; otherwise the variable is dropped, as the reference does.
    """

    original: str
    canonical: str | tuple[str, ...]
    transform: str = "copy"
    only_with_bias: bool = False

    def targets(self) -> tuple[str, ...]:
        return (self.canonical,) if isinstance(self.canonical, str) else self.canonical


def _rows(
    original: str, canonical: str, kind: str, *, only_with_bias: bool = False
) -> list[NameRule]:
    """The rows of one layer: `kind` is `dense` (kernel/bias), `layer_norm` (gamma/beta),
    `projection` (q/k/v kernel/bias, maybe 3-D) or `attention_output` (maybe 3-D kernel).

    `only_with_bias` applies to the bias row only.
    """
    if kind == "layer_norm":
        return [
            NameRule(f"{original}/gamma", f"{canonical}.weight"),
            NameRule(f"{original}/beta", f"{canonical}.bias"),
        ]
    kernel, bias = {
        "dense": ("transpose", "copy"),
        "projection": ("projection_kernel", "projection_bias"),
        "attention_output": ("attention_output_kernel", "copy"),
    }[kind]
    return [
        NameRule(f"{original}/kernel", f"{canonical}.weight", kernel),
        NameRule(f"{original}/bias", f"{canonical}.bias", bias, only_with_bias),
    ]


def _table(*groups: Iterable[NameRule]) -> tuple[NameRule, ...]:
    return tuple(rule for group in groups for rule in group)


# -- the name tables -----------------------------------------------------------------------------

_BERT_LAYER = "bert/encoder/layer_{layer}"
_CANONICAL_LAYER = "bert.encoder.layer.{layer}"


def _encoder_layer_rows(
    *, projection: str, attention_output: str, original: Mapping[str, str] | None = None
) -> tuple[NameRule, ...]:
    """The rows of one encoder layer. `projection` and `attention_output` are the kinds of the
    q/k/v rows and of the attention output row (`dense` in BERT; BigBird's may be 3-D).
    `original` names the original scope of each module of `bert.encoder.layer.{layer}`; by
    default it is BERT's, the canonical path under `bert/encoder/layer_{layer}`."""
    kinds = {
        "attention.self.query": projection,
        "attention.self.key": projection,
        "attention.self.value": projection,
        "attention.output.dense": attention_output,
        "attention.output.LayerNorm": "layer_norm",
        "intermediate.dense": "dense",
        "output.dense": "dense",
        "output.LayerNorm": "layer_norm",
    }
    if original is None:
        original = {module: f"{_BERT_LAYER}/{module.replace('.', '/')}" for module in kinds}
    return _table(
        *(
            _rows(original[module], f"{_CANONICAL_LAYER}.{module}", kind)
            for module, kind in kinds.items()
        )
    )


_EMBEDDING_TABLES = [
    NameRule(f"bert/embeddings/{table}", f"bert.embeddings.{table}.weight")
    for table in ("word_embeddings", "position_embeddings", "token_type_embeddings")
]
# `output_weights` is already `[out, in]`: no transpose. The LM decoder is tied to the word
# embeddings and not stored.
_PRETRAINING_HEADS = _table(
    [NameRule("cls/predictions/output_bias", "cls.predictions.bias")],
    _rows("cls/predictions/transform/dense", "cls.predictions.transform.dense", "dense"),
    _rows(
        "cls/predictions/transform/LayerNorm", "cls.predictions.transform.LayerNorm", "layer_norm"
    ),
    [
        NameRule("cls/seq_relationship/output_weights", "cls.seq_relationship.weight"),
        NameRule("cls/seq_relationship/output_bias", "cls.seq_relationship.bias"),
    ],
)


def _pretraining_table(
    embedding_layer_norm: str, projection: str, attention_output: str, pooler: str
) -> tuple[NameRule, ...]:
    """A pre-training checkpoint of the BERT layout: the embeddings and their LayerNorm (original
    scope `embedding_layer_norm`), the encoder layers (see `_encoder_layer_rows`), the pooler
    (canonical module `pooler`) and the pre-training heads."""
    return _table(
        _EMBEDDING_TABLES,
        _rows(embedding_layer_norm, "bert.embeddings.LayerNorm", "layer_norm"),
        _encoder_layer_rows(projection=projection, attention_output=attention_output),
        _rows("bert/pooler/dense", pooler, "dense"),
        _PRETRAINING_HEADS,
    )


# google-research/bert `bert_model.ckpt` -> BertForPreTraining.
BERT_TABLE = _pretraining_table(
    "bert/embeddings/LayerNorm",
    projection="dense",
    attention_output="dense",
    pooler="bert.pooler.dense",
)

# google-research/bigbird pretraining checkpoints -> BigBirdForPreTraining. Differences from BERT:
# the embedding LayerNorm lives in the encoder's scope (`bert/encoder/LayerNorm`), q/k/v and the
# attention output may be 3-D, q/k/v biases exist only with `use_bias`, and the pooler is a bare
# Linear (`bert.pooler.weight`).
BIG_BIRD_TABLE = _pretraining_table(
    "bert/encoder/LayerNorm",
    projection="projection",
    attention_output="attention_output",
    pooler="bert.pooler",
)

# The BigBird TriviaQA model (a Keras model in the TF Model Garden style) -> BigBirdForQuestion-
# Answering. Names are the Keras variable names without `:0`; `transformer_scaffold` (layer 0) is
# read as `transformer_scaffold_0`. Kernels of the attention are 3-D (Keras EinsumDense).
_SCAFFOLD = "transformer_scaffold_{layer}"
BIG_BIRD_TRIVIA_QA_TABLE = _table(
    [
        NameRule("word_embeddings/embeddings", "bert.embeddings.word_embeddings.weight"),
        NameRule("position_embedding/embeddings", "bert.embeddings.position_embeddings.weight"),
        NameRule("type_embeddings/embeddings", "bert.embeddings.token_type_embeddings.weight"),
    ],
    _rows("embeddings/layer_norm", "bert.embeddings.LayerNorm", "layer_norm"),
    _encoder_layer_rows(
        projection="projection",
        attention_output="attention_output",
        original={
            "attention.self.query": f"{_SCAFFOLD}/big_bird_attention/query",
            "attention.self.key": f"{_SCAFFOLD}/big_bird_attention/key",
            "attention.self.value": f"{_SCAFFOLD}/big_bird_attention/value",
            "attention.output.dense": f"{_SCAFFOLD}/big_bird_attention/attention_output",
            "attention.output.LayerNorm": f"{_SCAFFOLD}/self_attention_layer_norm",
            "intermediate.dense": f"{_SCAFFOLD}/intermediate",
            "output.dense": f"{_SCAFFOLD}/output",
            "output.LayerNorm": f"{_SCAFFOLD}/output_layer_norm",
        },
    ),
    _rows("trivia_qa_head/dense", "qa_classifier.intermediate.dense", "dense"),
    # The head's second dense layer. In an ordered variable list (a SavedModel) the reference
    # recognises it as the last two variables; see `_rename_trivia_qa_output_dense`.
    _rows("trivia_qa_head/output", "qa_classifier.output.dense", "dense"),
    _rows("trivia_qa_head/layer_normalization", "qa_classifier.output.LayerNorm", "layer_norm"),
    _rows("trivia_qa_head/dense_1", "qa_classifier.qa_outputs", "dense"),
)

# google-research/bigbird summarization checkpoints (`pegasus/...`, pre-LayerNorm layers) ->
# BigBirdPegasusForConditionalGeneration. The pre-LN layer keeps its attention LayerNorm under
# `attention/self` and its FFN LayerNorm under `intermediate`; the stacks' final LayerNorms are
# `pegasus/{encoder,decoder}/LayerNorm`. Attention biases exist in the canonical model only with
# `use_bias` (default False); the reference ignores them.
_DEC = "pegasus/decoder/layer_{layer}"
_CANONICAL_DEC = "model.decoder.layers.{layer}"


def _pegasus_stack_rows(
    stack: str, projections: tuple[str, str, str], output: str
) -> tuple[NameRule, ...]:
    """The rows that the encoder and the decoder `stack` ("encoder" or "decoder") both have: a
    layer's self-attention (`projections`: the canonical modules under `self_attn` of its query,
    key and value; `output`: of its output projection) and its LayerNorm, the feed-forward
    LayerNorm and two dense layers, and the stack's final LayerNorm."""
    layer = f"pegasus/{stack}/layer_{{layer}}"
    canonical = f"model.{stack}.layers.{{layer}}"
    return _table(
        *(
            _rows(
                f"{layer}/attention/self/{p}",
                f"{canonical}.self_attn.{module}",
                "projection",
                only_with_bias=True,
            )
            for p, module in zip(("query", "key", "value"), projections)
        ),
        _rows(
            f"{layer}/attention/self/LayerNorm", f"{canonical}.self_attn_layer_norm", "layer_norm"
        ),
        _rows(
            f"{layer}/attention/output/dense",
            f"{canonical}.self_attn.{output}",
            "attention_output",
            only_with_bias=True,
        ),
        _rows(f"{layer}/intermediate/LayerNorm", f"{canonical}.final_layer_norm", "layer_norm"),
        _rows(f"{layer}/intermediate/dense", f"{canonical}.fc1", "dense"),
        _rows(f"{layer}/output/dense", f"{canonical}.fc2", "dense"),
        _rows(f"pegasus/{stack}/LayerNorm", f"model.{stack}.layernorm_embedding", "layer_norm"),
    )


BIGBIRD_PEGASUS_TABLE = _table(
    [
        NameRule("pegasus/embeddings/word_embeddings", "model.shared.weight"),
        NameRule(
            "pegasus/embeddings/position_embeddings",
            ("model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight"),
        ),
    ],
    _pegasus_stack_rows("encoder", ("self.query", "self.key", "self.value"), "output"),
    _pegasus_stack_rows("decoder", ("q_proj", "k_proj", "v_proj"), "out_proj"),
    # the decoder's cross-attention
    *(
        _rows(
            f"{_DEC}/attention/encdec/{p}",
            f"{_CANONICAL_DEC}.encoder_attn.{p[0]}_proj",
            "projection",
            only_with_bias=True,
        )
        for p in ("query", "key", "value")
    ),
    _rows(
        f"{_DEC}/attention/encdec/LayerNorm",
        f"{_CANONICAL_DEC}.encoder_attn_layer_norm",
        "layer_norm",
    ),
    _rows(
        f"{_DEC}/attention/encdec_output/dense",
        f"{_CANONICAL_DEC}.encoder_attn.out_proj",
        "attention_output",
        only_with_bias=True,
    ),
)


@dataclass(frozen=True)
class Family:
    """What one kind of original checkpoint converts to."""

    table: tuple[NameRule, ...]
    config_class: type[PretrainedConfig]
    architecture: str
    required_shapes: Callable[[Any], dict[str, tuple[int, ...]]]


# -- the tensors each target model needs ---------------------------------------------------------


def _encoder_shapes(config: Any, pooler: str | None) -> dict[str, tuple[int, ...]]:
    hidden, inner = config.hidden_size, config.intermediate_size
    with_bias = getattr(config, "use_bias", True)
    shapes: dict[str, tuple[int, ...]] = {
        "bert.embeddings.word_embeddings.weight": (config.vocab_size, hidden),
        "bert.embeddings.position_embeddings.weight": (config.max_position_embeddings, hidden),
        "bert.embeddings.token_type_embeddings.weight": (config.type_vocab_size, hidden),
        "bert.embeddings.LayerNorm.weight": (hidden,),
        "bert.embeddings.LayerNorm.bias": (hidden,),
    }
    for layer in range(config.num_hidden_layers):
        prefix = f"bert.encoder.layer.{layer}"
        for projection in ("query", "key", "value"):
            shapes[f"{prefix}.attention.self.{projection}.weight"] = (hidden, hidden)
            if with_bias:
                shapes[f"{prefix}.attention.self.{projection}.bias"] = (hidden,)
        shapes |= _linear(f"{prefix}.attention.output.dense", hidden, hidden)
        shapes |= _layer_norm(f"{prefix}.attention.output.LayerNorm", hidden)
        shapes |= _linear(f"{prefix}.intermediate.dense", hidden, inner)
        shapes |= _linear(f"{prefix}.output.dense", inner, hidden)
        shapes |= _layer_norm(f"{prefix}.output.LayerNorm", hidden)
    if pooler is not None:
        shapes |= _linear(pooler, hidden, hidden)
    return shapes


def _pretraining_heads(config: Any) -> dict[str, tuple[int, ...]]:
    hidden = config.hidden_size
    return {
        "cls.predictions.bias": (config.vocab_size,),
        **_linear("cls.predictions.transform.dense", hidden, hidden),
        **_layer_norm("cls.predictions.transform.LayerNorm", hidden),
        **_linear("cls.seq_relationship", hidden, 2),
    }


def _linear(name: str, fan_in: int, fan_out: int, bias: bool = True) -> dict[str, tuple]:
    shapes: dict[str, tuple] = {f"{name}.weight": (fan_out, fan_in)}
    if bias:
        shapes[f"{name}.bias"] = (fan_out,)
    return shapes


def _layer_norm(name: str, width: int) -> dict[str, tuple]:
    return {f"{name}.weight": (width,), f"{name}.bias": (width,)}


def _bert_pretraining_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    return _encoder_shapes(config, pooler="bert.pooler.dense") | _pretraining_heads(config)


def _big_bird_pretraining_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    return _encoder_shapes(config, pooler="bert.pooler") | _pretraining_heads(config)


def _big_bird_question_answering_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    hidden, inner = config.hidden_size, config.intermediate_size
    return _encoder_shapes(config, pooler=None) | {
        **_linear("qa_classifier.intermediate.dense", hidden, inner),
        **_linear("qa_classifier.output.dense", inner, hidden),
        **_layer_norm("qa_classifier.output.LayerNorm", hidden),
        **_linear("qa_classifier.qa_outputs", hidden, 2),
    }


def _bigbird_pegasus_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    width, bias = config.d_model, bool(config.use_bias)
    shapes: dict[str, tuple[int, ...]] = {
        "final_logits_bias": (1, config.vocab_size),
        "model.shared.weight": (config.vocab_size, width),
        "model.encoder.embed_positions.weight": (config.max_position_embeddings, width),
        "model.decoder.embed_positions.weight": (config.max_position_embeddings, width),
        **_layer_norm("model.encoder.layernorm_embedding", width),
        **_layer_norm("model.decoder.layernorm_embedding", width),
    }
    for layer in range(config.encoder_layers):
        prefix = f"model.encoder.layers.{layer}"
        for projection in ("query", "key", "value", "output"):
            module = "output" if projection == "output" else f"self.{projection}"
            shapes |= _linear(f"{prefix}.self_attn.{module}", width, width, bias)
        shapes |= _layer_norm(f"{prefix}.self_attn_layer_norm", width)
        shapes |= _linear(f"{prefix}.fc1", width, config.encoder_ffn_dim)
        shapes |= _linear(f"{prefix}.fc2", config.encoder_ffn_dim, width)
        shapes |= _layer_norm(f"{prefix}.final_layer_norm", width)
    for layer in range(config.decoder_layers):
        prefix = f"model.decoder.layers.{layer}"
        for module in ("self_attn", "encoder_attn"):
            for projection in ("q_proj", "k_proj", "v_proj", "out_proj"):
                shapes |= _linear(f"{prefix}.{module}.{projection}", width, width, bias)
            shapes |= _layer_norm(f"{prefix}.{module}_layer_norm", width)
        shapes |= _linear(f"{prefix}.fc1", width, config.decoder_ffn_dim)
        shapes |= _linear(f"{prefix}.fc2", config.decoder_ffn_dim, width)
        shapes |= _layer_norm(f"{prefix}.final_layer_norm", width)
    return shapes


FAMILIES: dict[str, Family] = {
    "bert": Family(BERT_TABLE, BertConfig, "BertForPreTraining", _bert_pretraining_shapes),
    "big_bird": Family(
        BIG_BIRD_TABLE, BigBirdConfig, "BigBirdForPreTraining", _big_bird_pretraining_shapes
    ),
    "big_bird_trivia_qa": Family(
        BIG_BIRD_TRIVIA_QA_TABLE,
        BigBirdConfig,
        "BigBirdForQuestionAnswering",
        _big_bird_question_answering_shapes,
    ),
    "bigbird_pegasus": Family(
        BIGBIRD_PEGASUS_TABLE,
        BigBirdPegasusConfig,
        "BigBirdPegasusForConditionalGeneration",
        _bigbird_pegasus_shapes,
    ),
}

# -- variables that are not weights --------------------------------------------------------------

# A variable is optimizer or bookkeeping state when any path component matches: Adam/AdamW slots
# (`adam_m`, `adam_v`, TF1 `Adam`, `Adam_1`), the BERT optimizer's scope, Adafactor and LAMB state,
# momentum slots, the step counter and TF1 Adam's power accumulators.
SKIPPED_COMPONENTS = re.compile(
    r"adam_[mv]|Adam(_\d+)?|AdamWeightDecayOptimizer(_\d+)?|Adafactor\w*|adafactor\w*|LAMB\w*"
    r"|Momentum|global_step|beta[12]_power|_CHECKPOINTABLE_OBJECT_GRAPH"
)


def is_optimizer_variable(name: str) -> bool:
    """Whether an original variable is training state rather than a model weight."""
    return any(SKIPPED_COMPONENTS.fullmatch(part) for part in name.split("/"))


# -- configs -------------------------------------------------------------------------------------

# Original hyper-parameter name -> canonical field, per family. Keys of the original configs that
# do not change the weights' meaning (`max_encoder_length`, `beam_size`, `scope`, ...) are ignored.
_ENCODER_KEYS = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "num_hidden_layers": "num_hidden_layers",
    "num_attention_heads": "num_attention_heads",
    "intermediate_size": "intermediate_size",
    "hidden_act": "hidden_act",
    "hidden_dropout_prob": "hidden_dropout_prob",
    "attention_probs_dropout_prob": "attention_probs_dropout_prob",
    "max_position_embeddings": "max_position_embeddings",
    "type_vocab_size": "type_vocab_size",
    "initializer_range": "initializer_range",
}
ORIGINAL_CONFIG_KEYS: dict[str, dict[str, str]] = {
    "bert": _ENCODER_KEYS,
    "big_bird": _ENCODER_KEYS
    | {
        "attention_type": "attention_type",
        "block_size": "block_size",
        "num_rand_blocks": "num_random_blocks",
        "use_bias": "use_bias",
        "rescale_embedding": "rescale_embeddings",
    },
    "bigbird_pegasus": {
        "vocab_size": "vocab_size",
        "hidden_size": "d_model",
        "num_hidden_layers": ("encoder_layers", "decoder_layers"),
        "num_attention_heads": ("encoder_attention_heads", "decoder_attention_heads"),
        "intermediate_size": ("encoder_ffn_dim", "decoder_ffn_dim"),
        "hidden_act": "activation_function",
        "hidden_dropout_prob": "dropout",
        "attention_probs_dropout_prob": "attention_dropout",
        "max_position_embeddings": "max_position_embeddings",
        "initializer_range": "init_std",
        "attention_type": "attention_type",
        "block_size": "block_size",
        "num_rand_blocks": "num_random_blocks",
        "use_bias": "use_bias",
        "rescale_embedding": "scale_embedding",
    },
}
ORIGINAL_CONFIG_KEYS["big_bird_trivia_qa"] = ORIGINAL_CONFIG_KEYS["big_bird"]

# The BigBird code's `gelu` is the tanh approximation, which the canonical configs call `gelu_new`.
# (google-research/bert's is too, but the reference keeps BERT's `gelu`, and every published BERT
# config.json says `gelu`; BERT keeps it.)
_BIG_BIRD_ACTIVATIONS = {"gelu": "gelu_new"}
# The layer-norm placement each family's tables are written for.
_NORM_TYPES = {
    "big_bird": "postnorm",
    "big_bird_trivia_qa": "postnorm",
    "bigbird_pegasus": "prenorm",
}


def original_config(hyper_parameters: Mapping[str, Any], family: str) -> PretrainedConfig:
    """A canonical config built from an original checkpoint's hyper-parameters
    (`bert_config.json`, or the BigBird flags / config dictionary)."""
    spec = _family(family)
    norm_type = hyper_parameters.get("norm_type")
    if norm_type is not None and family in _NORM_TYPES and norm_type != _NORM_TYPES[family]:
        raise ValueError(
            f"the original config has norm_type={norm_type!r}; {family} checkpoints are "
            f"{_NORM_TYPES[family]}"
        )
    if hyper_parameters.get("couple_encoder_decoder"):
        raise ValueError(
            "couple_encoder_decoder=True checkpoints (one shared stack) are not supported"
        )
    fields: dict[str, Any] = {}
    for key, value in hyper_parameters.items():
        target = ORIGINAL_CONFIG_KEYS[family].get(key)
        if target is None:
            continue
        if key == "hidden_act" and family != "bert":
            value = _BIG_BIRD_ACTIVATIONS.get(value, value)
        for name in (target,) if isinstance(target, str) else target:
            fields[name] = value
    return spec.config_class(**fields)


def _resolve_config(config: Any, family: str, source: Any) -> PretrainedConfig:
    spec = _family(family)
    if config is None:
        config = _config_beside(source)
    if isinstance(config, PretrainedConfig):
        if not isinstance(config, spec.config_class):
            raise ValueError(
                f"{family} needs a {spec.config_class.__name__}, got {type(config).__name__}"
            )
        return config.copy()
    if isinstance(config, (str, os.PathLike)):
        config = read_config_file(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a config object, a JSON path or a dict, got {config!r}")
    if "model_type" in config:  # a canonical config.json
        return spec.config_class.from_dict(dict(config))
    return original_config(config, family)


def _config_beside(source: Any) -> Any:
    """With no config given: the original release's config file next to the checkpoint."""
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source) if Path(source).is_dir() else Path(source).parent
        for name in ("config.json", "bert_config.json", "bigbird_config.json"):
            if (folder / name).is_file():
                return folder / name
    raise ValueError(
        "no config given and no config.json / bert_config.json next to the checkpoint: pass "
        "config= (a config object, a config.json path, or the original hyper-parameters)"
    )


def _family(family: str) -> Family:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}: expected one of {', '.join(FAMILIES)}")
    return FAMILIES[family]


# -- reading original variables ------------------------------------------------------------------

VariableSource = str | os.PathLike | Mapping[str, Any] | Sequence[tuple[str, Any]]


def read_original_variables(source: VariableSource) -> tuple[list[tuple[str, np.ndarray]], bool]:
    """Every variable of an original checkpoint as `(name, array)` pairs (`:0` removed), and
    whether their order is meaningful (a SavedModel's variable list or a sequence of pairs).

    `source` is a tf.train checkpoint prefix (or a folder with a `checkpoint` file), a SavedModel
    folder, a mapping of names to arrays, or a sequence of `(name, array)` pairs.
    """
    if isinstance(source, Mapping):
        pairs, ordered = list(source.items()), False
    elif isinstance(source, (str, os.PathLike)):
        pairs, ordered = _read_tf(Path(source))
    else:
        pairs, ordered = list(source), True
    return [(_strip_device_suffix(name), np.asarray(value)) for name, value in pairs], ordered


def _strip_device_suffix(name: str) -> str:
    return re.sub(r":\d+$", "", name)


def _read_tf(path: Path) -> tuple[list[tuple[str, Any]], bool]:
    import tensorflow as tf

    if (path / "saved_model.pb").is_file():
        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as err:
            raise CheckpointError(f"cannot read the SavedModel at {path}: {err}") from None
        variables = getattr(loaded, "variables", None)
        if variables is None:  # Keras models keep their variable list; a bare tf.Module does not
            raise CheckpointError(f"the SavedModel at {path} has no `variables` list to read")
        return [(variable.name, variable.numpy()) for variable in variables], True
    prefix = str(path)
    if path.is_dir():
        prefix = tf.train.latest_checkpoint(str(path))
        if prefix is None:
            raise CheckpointError(f"{path} holds no TensorFlow checkpoint (no `checkpoint` file)")
    elif not Path(prefix + ".index").is_file():
        raise CheckpointError(
            f"no TensorFlow checkpoint at {path}: expected {path}.index and data files "
            "(give the prefix, e.g. .../bert_model.ckpt)"
        )
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
        return [(name, reader.get_tensor(name)) for name in names], False
    except Exception as err:  # TF raises DataLossError / NotFoundError for unreadable files
        raise CheckpointError(f"cannot read the TensorFlow checkpoint {prefix}: {err}") from None


def _rename_trivia_qa_output_dense(
    variables: list[tuple[str, np.ndarray]],
) -> list[tuple[str, np.ndarray]]:
    """The reference's rule for the TriviaQA SavedModel: the head's second dense layer is the
    last two variables of the list, under a name that would otherwise mean another layer
    (`trivia_qa_head/dense` or `trivia_qa_head/intermediate`). Only an ordered list carries this.
    """
    ambiguous = re.compile(r"trivia_qa_head/(dense|intermediate)/(kernel|bias)")
    tail = variables[-2:]
    if len(tail) == 2 and all(ambiguous.fullmatch(name) for name, _ in tail):
        renamed = [(re.sub(r"/(dense|intermediate)/", "/output/", n), v) for n, v in tail]
        return variables[:-2] + renamed
    return variables


# -- mapping -------------------------------------------------------------------------------------


def _compile(table: Sequence[NameRule]) -> list[tuple[re.Pattern[str], NameRule]]:
    compiled = []
    for rule in table:
        pattern = re.escape(rule.original).replace(r"\{layer\}", r"(?P<layer>\d+)")
        compiled.append((re.compile(pattern), rule))
    return compiled


def _describe(source: Any) -> str:
    return str(source) if isinstance(source, (str, os.PathLike)) else "the given variables"


def _heads(config: Any, canonical: str) -> int:
    if isinstance(config, BigBirdPegasusConfig) and canonical.startswith("model.decoder."):
        return config.decoder_attention_heads
    return config.num_attention_heads


def import_original_tf(
    checkpoint_prefix: VariableSource, family: str, config: Any = None
) -> tuple[PretrainedConfig, dict[str, np.ndarray]]:
    """Read an original Google TF checkpoint and return `(config, {canonical name: array})`.

    `family` is `bert`, `big_bird`, `big_bird_trivia_qa` or `bigbird_pegasus`. `config` is a
    config object, a path to a `config.json` (canonical) or to the original hyper-parameters
    (`bert_config.json`), or a dict of either; when omitted, a `config.json` / `bert_config.json`
    next to the checkpoint is used. Raises `CheckpointError` naming every variable no table row
    matches, every needed tensor nothing produced, and every shape that does not fit the config.
    """
    spec = _family(family)
    resolved = _resolve_config(config, family, checkpoint_prefix)
    resolved.architectures = [spec.architecture]
    source = _describe(checkpoint_prefix)
    variables, ordered = read_original_variables(checkpoint_prefix)
    if not variables:
        raise CheckpointError(f"{source} holds no variables")
    if family == "big_bird_trivia_qa":
        variables = [
            (re.sub(r"^transformer_scaffold/", "transformer_scaffold_0/", name), value)
            for name, value in variables
        ]
        if ordered:
            variables = _rename_trivia_qa_output_dense(variables)

    rules = _compile(spec.table)
    required = spec.required_shapes(resolved)
    tensors: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    unmatched: list[str] = []
    problems: list[str] = []
    dropped_biases: list[str] = []
    for name, array in variables:
        if is_optimizer_variable(name):
            continue
        match = next(((m, rule) for p, rule in rules if (m := p.fullmatch(name))), None)
        if match is None:
            unmatched.append(name)
            continue
        found, rule = match
        if rule.only_with_bias and not resolved.use_bias:
            # The reference ignores these; losing non-zero values would change the model.
            if np.any(array):
                dropped_biases.append(name)
            continue
        layer = found.groupdict().get("layer")
        for pattern in rule.targets():
            canonical = pattern.format(layer=layer)
            if canonical in tensors:
                problems.append(f"{name} and {origin[canonical]} both map to {canonical}")
                continue
            try:
                value = TRANSFORMS[rule.transform](array, _heads(resolved, canonical))
            except ValueError as err:
                problems.append(f"{name} -> {canonical}: {err}")
                continue
            tensors[canonical] = np.ascontiguousarray(value)
            origin[canonical] = name

    if dropped_biases:
        warnings.warn(
            f"{len(dropped_biases)} attention biases are not zero but the config has "
            "use_bias=False, so they are dropped (as the reference does); pass a config with "
            f"use_bias=True to keep them: {', '.join(dropped_biases)}",
            stacklevel=2,
        )
    if family == "bigbird_pegasus" and "final_logits_bias" not in tensors:
        # The original has no such bias; the canonical model's buffer is zeros.
        tensors["final_logits_bias"] = np.zeros((1, resolved.vocab_size), dtype=np.float32)
        origin["final_logits_bias"] = "(zeros: not in the original)"

    missing = sorted(set(required) - set(tensors))
    extra = sorted(set(tensors) - set(required))
    mismatched = [
        f"{name} (from {origin[name]}): config expects {required[name]}, "
        f"checkpoint has {tuple(tensors[name].shape)}"
        for name in sorted(set(required) & set(tensors))
        if tuple(tensors[name].shape) != tuple(required[name])
    ]
    report = []
    if unmatched:
        report.append("original variables no name-table row matches: " + ", ".join(unmatched))
    if missing:
        report.append("tensors the model needs that nothing produced: " + ", ".join(missing))
    if extra:
        report.append(
            "tensors the config does not expect (too few layers? use_bias?): "
            + ", ".join(f"{name} (from {origin[name]})" for name in extra)
        )
    if mismatched:
        report.append("shapes that do not fit the config: " + "; ".join(mismatched))
    report.extend(problems)
    if report:
        raise CheckpointError(f"cannot import {source} as {family}:\n" + "\n".join(report))
    return resolved, {name: tensors[name] for name in sorted(tensors)}


def convert_original_tf(
    checkpoint_prefix: VariableSource,
    out_folder: str | os.PathLike,
    family: str,
    config: Any = None,
) -> Path:
    """Convert an original Google TF checkpoint into a canonical folder (`model.safetensors` +
    `config.json`); returns the folder."""
    resolved, tensors = import_original_tf(checkpoint_prefix, family, config)
    out = Path(out_folder)
    write_checkpoint(tensors, out)
    resolved.save_pretrained(out)
    return out
