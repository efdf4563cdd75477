"""Model outputs: one mapping type, and the field lists every framework's output classes share.

An output works as an object (`out.logits`), as a mapping (`out["logits"]`) and as a tuple of its
fields that are not None (`out[0]`, `out.to_tuple()`), like the reference library's outputs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

# A pre-training head's fields (BERT's and BigBird's alike).
_PRETRAINING_FIELDS = (
    "loss",
    "prediction_logits",
    "seq_relationship_logits",
    "hidden_states",
    "attentions",
)
# The fields after an encoder-decoder head's own: the cache and the decoder's and encoder's states.
_SEQ2SEQ_STATES = (
    "past_key_values",
    "decoder_hidden_states",
    "decoder_attentions",
    "cross_attentions",
    "encoder_last_hidden_state",
    "encoder_hidden_states",
    "encoder_attentions",
)

# Field order is the reference library's; `to_tuple()` and `return_dict=False` follow it.
OUTPUT_FIELDS: dict[str, tuple[str, ...]] = {
    "BaseModelOutputWithPoolingAndCrossAttentions": (
        "last_hidden_state",
        "pooler_output",
        "hidden_states",
        "past_key_values",
        "attentions",
        "cross_attentions",
    ),
    "BertForPreTrainingOutput": _PRETRAINING_FIELDS,
    "CausalLMOutputWithCrossAttentions": (
        "loss",
        "logits",
        "past_key_values",
        "hidden_states",
        "attentions",
        "cross_attentions",
    ),
    "MaskedLMOutput": ("loss", "logits", "hidden_states", "attentions"),
    "NextSentencePredictorOutput": ("loss", "logits", "hidden_states", "attentions"),
    "SequenceClassifierOutput": ("loss", "logits", "hidden_states", "attentions"),
    "MultipleChoiceModelOutput": ("loss", "logits", "hidden_states", "attentions"),
    "TokenClassifierOutput": ("loss", "logits", "hidden_states", "attentions"),
    "BigBirdForPreTrainingOutput": _PRETRAINING_FIELDS,
    "BigBirdForQuestionAnsweringModelOutput": (
        "loss",
        "start_logits",
        "end_logits",
        "pooler_output",
        "hidden_states",
        "attentions",
    ),
    "QuestionAnsweringModelOutput": (
        "loss",
        "start_logits",
        "end_logits",
        "hidden_states",
        "attentions",
    ),
    # Encoder-decoder models (BigBirdPegasus).
    "BaseModelOutput": ("last_hidden_state", "hidden_states", "attentions"),
    "BaseModelOutputWithPastAndCrossAttentions": (
        "last_hidden_state",
        "past_key_values",
        "hidden_states",
        "attentions",
        "cross_attentions",
    ),
    "Seq2SeqModelOutput": ("last_hidden_state", *_SEQ2SEQ_STATES),
    "Seq2SeqLMOutput": ("loss", "logits", *_SEQ2SEQ_STATES),
    "Seq2SeqSequenceClassifierOutput": ("loss", "logits", *_SEQ2SEQ_STATES),
    "Seq2SeqQuestionAnsweringModelOutput": ("loss", "start_logits", "end_logits", *_SEQ2SEQ_STATES),
}


class ModelOutput(Mapping):
    """Base output: named fields, None for the ones a call did not produce."""

    _fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(self._fields):
            raise TypeError(f"{type(self).__name__} takes at most {len(self._fields)} fields")
        values = dict(zip(self._fields, args))
        for name, value in kwargs.items():
            if name not in self._fields:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
            if name in values:
                raise TypeError(f"{type(self).__name__} got field {name!r} twice")
            values[name] = value
        for name in self._fields:
            object.__setattr__(self, name, values.get(name))

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, str):
            value = getattr(self, key) if key in self._fields else None
            if value is None:
                raise KeyError(key)
            return value
        return self.to_tuple()[key]

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._fields if getattr(self, name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that are not None, in order."""
        return tuple(getattr(self, name) for name in self)

    def replace(self, **changes: Any) -> ModelOutput:
        """A copy with some fields replaced."""
        return type(self)(**{**{n: getattr(self, n) for n in self._fields}, **changes})

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={_short(getattr(self, name))}" for name in self)
        return f"{type(self).__name__}({inner})"


def _short(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"<{type(value).__name__} shape={tuple(shape)}>"
    if isinstance(value, tuple):
        return f"<tuple of {len(value)}>"
    return repr(value)


def output_class(name: str, base: type[ModelOutput] = ModelOutput) -> type[ModelOutput]:
    """Create the output class `name` with the fields listed in `OUTPUT_FIELDS`."""
    return type(name, (base,), {"_fields": OUTPUT_FIELDS[name], "__doc__": f"{name} fields."})


# -- the head mechanism: flags, and a head's output from its base model's ------------------------


def resolve_return_dict(config: Any, return_dict: bool | None) -> bool:
    """A call's `return_dict`, defaulting to the config's."""
    return config.use_return_dict if return_dict is None else bool(return_dict)


def resolve_output_flags(
    config: Any, output_attentions: bool | None, output_hidden_states: bool | None
) -> tuple[bool, bool]:
    """A call's `(output_attentions, output_hidden_states)`, defaulting to the config's."""
    if output_attentions is None:
        output_attentions = config.output_attentions
    if output_hidden_states is None:
        output_hidden_states = config.output_hidden_states
    return bool(output_attentions), bool(output_hidden_states)


def head_output(
    output_class: type[ModelOutput],
    base_outputs: ModelOutput | None,
    return_dict: bool,
    **fields: Any,
) -> ModelOutput | tuple[Any, ...]:
    """A head's output: the head's own `fields` (loss, logits, ...) plus every other field of
    `output_class` copied from the base model's output of the same name (hidden states,
    attentions, cache, encoder outputs, ...). The object, or its tuple when not `return_dict`.
    """
    if base_outputs is not None:
        for name in output_class._fields:
            if name not in fields and name in base_outputs._fields:
                fields[name] = getattr(base_outputs, name)
    output = output_class(**fields)
    return output if return_dict else output.to_tuple()


def as_encoder_output(encoder_outputs: Any, output_class: type[ModelOutput]) -> ModelOutput:
    """`encoder_outputs` as an encoder-decoder takes them: the encoder's output object, one array
    (its last hidden state), or the tuple `(last_hidden_state[, hidden_states[, attentions]])`;
    the last two become an `output_class` (`BaseModelOutput`) of the caller's framework."""
    if isinstance(encoder_outputs, ModelOutput):
        return encoder_outputs
    if hasattr(encoder_outputs, "shape"):  # one array of any framework
        encoder_outputs = (encoder_outputs,)
    if not isinstance(encoder_outputs, (tuple, list)) or not encoder_outputs:
        raise TypeError(
            "encoder_outputs must be the encoder's output or a tuple starting with its "
            f"last_hidden_state, got {type(encoder_outputs).__name__}"
        )
    return output_class(**dict(zip(output_class._fields, encoder_outputs)))
