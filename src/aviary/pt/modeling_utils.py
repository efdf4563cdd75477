"""PyTorch base class: building, initialising, loading and saving models; shared helpers.

State-dict names are the canonical checkpoint names (`aviary.core.naming`), so loading is a matter of
lining up names (`aviary.conversion.match_checkpoint`) and copying tensors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from aviary.conversion.checkpoint import (
    LoadReport,
    match_checkpoint,
    write_checkpoint,
)
from aviary.conversion.formats import read_model_weights, register_for_conversion
from aviary.core import checks
from aviary.core.configs import PretrainedConfig
from aviary.core.outputs import (
    ModelOutput,
    head_output,
    output_class,
    resolve_return_dict,
)


@register_for_conversion  # writing `pytorch_model.bin` needs it too
def numpy_to_torch(value: np.ndarray) -> torch.Tensor:
    """A torch tensor sharing the array's memory (bfloat16 included)."""
    if value.dtype.name == "bfloat16":  # ml_dtypes' bfloat16: same bits as torch.bfloat16
        return torch.from_numpy(np.ascontiguousarray(value).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(value))


# -- activations ---------------------------------------------------------------------------------


def _gelu_new(x: torch.Tensor) -> torch.Tensor:
    # tanh approximation of GELU (the original GPT-2/BigBird formula)
    return F.gelu(x, approximate="tanh")


def _gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


ACT2FN = {
    "gelu": F.gelu,
    "gelu_new": _gelu_new,
    "gelu_pytorch_tanh": _gelu_new,
    "gelu_fast": _gelu_fast,
    "quick_gelu": _quick_gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "selu": F.selu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "mish": F.mish,
    "linear": lambda x: x,
}


def get_activation(name_or_fn: Any):
    """The activation function a config names (or the callable it holds)."""
    return name_or_fn if callable(name_or_fn) else ACT2FN[name_or_fn]


# -- outputs: the output classes of every model (fields: `aviary.core.outputs.OUTPUT_FIELDS`) ---

BaseModelOutput = output_class("BaseModelOutput")
BaseModelOutputWithPastAndCrossAttentions = output_class(
    "BaseModelOutputWithPastAndCrossAttentions"
)
BaseModelOutputWithPoolingAndCrossAttentions = output_class(
    "BaseModelOutputWithPoolingAndCrossAttentions"
)
CausalLMOutputWithCrossAttentions = output_class("CausalLMOutputWithCrossAttentions")
MaskedLMOutput = output_class("MaskedLMOutput")
NextSentencePredictorOutput = output_class("NextSentencePredictorOutput")
SequenceClassifierOutput = output_class("SequenceClassifierOutput")
MultipleChoiceModelOutput = output_class("MultipleChoiceModelOutput")
TokenClassifierOutput = output_class("TokenClassifierOutput")
QuestionAnsweringModelOutput = output_class("QuestionAnsweringModelOutput")
Seq2SeqModelOutput = output_class("Seq2SeqModelOutput")
Seq2SeqLMOutput = output_class("Seq2SeqLMOutput")
Seq2SeqSequenceClassifierOutput = output_class("Seq2SeqSequenceClassifierOutput")
Seq2SeqQuestionAnsweringModelOutput = output_class("Seq2SeqQuestionAnsweringModelOutput")
BertForPreTrainingOutput = output_class("BertForPreTrainingOutput")
BigBirdForPreTrainingOutput = output_class("BigBirdForPreTrainingOutput")
BigBirdForQuestionAnsweringModelOutput = output_class("BigBirdForQuestionAnsweringModelOutput")


# -- masks ---------------------------------------------------------------------------------------


def additive_mask(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a keep-mask (1 = attend) into an additive bias: 0 where kept, the dtype's minimum
    elsewhere. A fully masked row then softmaxes to a uniform distribution, in every framework.
    """
    return (1.0 - keep.to(dtype)) * torch.finfo(dtype).min


def extended_attention_mask(
    attention_mask: torch.Tensor,
    query_length: int,
    dtype: torch.dtype,
    causal: bool,
) -> torch.Tensor:
    """`[B, K]` or `[B, Q, K]` keep-mask -> additive `[B, 1, Q or 1, K]` mask.

    With `causal`, query i (at position K - Q + i) may only see keys up to its own position.
    """
    if attention_mask.dim() == 3:
        keep = attention_mask[:, None, :, :]
    else:
        keep = attention_mask[:, None, None, :]
    if causal:
        key_length = attention_mask.shape[-1]
        past = key_length - query_length
        query_pos = torch.arange(past, key_length, device=attention_mask.device)
        key_pos = torch.arange(key_length, device=attention_mask.device)
        causal_keep = (key_pos[None, :] <= query_pos[:, None]).to(keep.dtype)  # [Q, K]
        keep = keep * causal_keep[None, None]
    return additive_mask(keep, dtype)


def expand_head_mask(
    head_mask: torch.Tensor | None, num_layers: int, num_heads: int, dtype: torch.dtype
) -> list[torch.Tensor | None]:
    """`[heads]` or `[layers, heads]` -> per layer `[1, heads, 1, 1]` multipliers (or Nones)."""
    if head_mask is None:
        return [None] * num_layers
    checks.check_head_mask_shape(head_mask.shape, num_layers, num_heads)
    if head_mask.dim() == 1:
        head_mask = head_mask[None].expand(num_layers, -1)
    return [head_mask[i].to(dtype)[None, :, None, None] for i in range(num_layers)]


def classifier_dropout(config: PretrainedConfig) -> nn.Dropout:
    """Dropout before a classifier: `classifier_dropout`, or `hidden_dropout_prob` when unset."""
    rate = config.classifier_dropout
    return nn.Dropout(config.hidden_dropout_prob if rate is None else rate)


def check_ids(name: str, ids: torch.Tensor, size: int) -> None:
    """Raise a clear error for ids outside an embedding table (skipped while compiling)."""
    if ids.numel() == 0 or torch.compiler.is_compiling():
        return
    if ids.dtype.is_floating_point:
        raise TypeError(f"{name} must hold integers, got {ids.dtype}")
    checks.check_ids_in_range(name, int(ids.min()), int(ids.max()), size)


class LayerStack(nn.Module):
    """Base of the stacks of layers (BERT's encoder, BigBirdPegasus's encoder and decoder).
    With `gradient_checkpointing` (the model's `gradient_checkpointing_enable`), each layer's
    activations are recomputed in the backward pass instead of stored."""

    def __init__(self) -> None:
        super().__init__()
        self.gradient_checkpointing = False

    def run_layer(self, layer: nn.Module, *args: Any, **kwargs: Any) -> Any:
        """`layer(*args, **kwargs)`, checkpointed while training with `gradient_checkpointing`."""
        if self.gradient_checkpointing and self.training:
            return checkpoint(layer, *args, use_reentrant=False, **kwargs)
        return layer(*args, **kwargs)


# -- the base class ------------------------------------------------------------------------------


class PreTrainedModel(nn.Module):
    """Base of every aviary PyTorch model.

    Subclasses set `config_class`, `base_model_prefix`, `base_model_class` (the backbone a head
    builds under the attribute `base_model_prefix`) and `tied_weights` (pairs of
    `(tied parameter, source parameter)` canonical names, tied when `config.tie_word_embeddings`).
    """

    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    base_model_prefix: ClassVar[str] = ""
    base_model_class: ClassVar[type[PreTrainedModel] | None] = None
    tied_weights: ClassVar[tuple[tuple[str, str], ...]] = ()
    supports_gradient_checkpointing: ClassVar[bool] = True
    # Attention kernels a model family offers; the first is the default.
    attn_implementations: ClassVar[tuple[str, ...]] = ("sdpa", "eager")

    def __init__(self, config: PretrainedConfig, attn_implementation: str | None = None) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self._requested_attn_implementation = attn_implementation

    # -- construction ---------------------------------------------------------------------------
    @property
    def initializer_range(self) -> float:
        return getattr(self.config, "initializer_range", getattr(self.config, "init_std", 0.02))

    def post_init(self) -> None:
        """Initialise every weight from the config's initializer range, tie, pick attention."""
        self.apply(self._init_weights)
        self.tie_weights()
        self.set_attn_implementation(
            self._requested_attn_implementation or self.attn_implementations[0]
        )

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        for name, param in module.named_parameters(recurse=False):
            # Free-standing biases (the LM head's output bias) start at zero.
            if name == "bias" and not isinstance(module, (nn.Linear, nn.LayerNorm)):
                param.zero_()

    def tie_weights(self) -> None:
        """Make each tied parameter the same tensor as its source."""
        if not getattr(self.config, "tie_word_embeddings", True):
            return
        for tied, source in self.tied_weights:
            owner, attr = self._owner(tied)
            setattr(owner, attr, self.get_parameter(source))

    def _owner(self, name: str) -> tuple[nn.Module, str]:
        module_name, _, attr = name.rpartition(".")
        return self.get_submodule(module_name), attr

    def set_attn_implementation(self, name: str) -> None:
        """Choose the attention kernel of every layer: `"sdpa"` (fused kernel; default) or
        `"eager"` (matmul + softmax, the reference's arithmetic); BigBird adds
        `"flex_attention"`."""
        if name not in self.attn_implementations:
            raise ValueError(
                f"attn_implementation={name!r} is not one of "
                f"{', '.join(self.attn_implementations)} for {type(self).__name__}"
            )
        self.attn_implementation = name
        for module in self.modules():
            if hasattr(module, "attn_implementation") and module is not self:
                module.attn_implementation = name

    def gradient_checkpointing_enable(self) -> None:
        """Recompute each layer's activations in the backward pass instead of storing them."""
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    def num_parameters(self) -> int:
        """Number of distinct parameters (tied ones counted once)."""
        return sum(p.numel() for p in self.parameters())

    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    # -- outputs --------------------------------------------------------------------------------
    def head_output(
        self,
        output_class: type[ModelOutput],
        base_outputs: ModelOutput | None,
        return_dict: bool | None,
        **fields: Any,
    ) -> ModelOutput | tuple:
        """A model's output: its own `fields` (loss, logits, ...) plus the base model's hidden
        states, attentions, cache, ... (`aviary.core.outputs.head_output`); `return_dict`
        defaults to the config's."""
        return head_output(
            output_class, base_outputs, resolve_return_dict(self.config, return_dict), **fields
        )

    # -- checkpoints ----------------------------------------------------------------------------
    def _tied_names(self) -> set[str]:
        """State-dict names that repeat a tensor stored under an earlier name."""
        seen: set[int] = set()
        tied = set()
        for name, tensor in self.state_dict(keep_vars=True).items():
            if id(tensor) in seen:
                tied.add(name)
            seen.add(id(tensor))
        return tied

    def checkpoint_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores: the state dict with each shared tensor stored once,
        under its first name (the word embeddings, not the tied LM decoder), as the reference.
        """
        tied = self._tied_names()
        return {k: v for k, v in self.state_dict().items() if k not in tied}

    def load_checkpoint_tensors(
        self,
        tensors: dict[str, torch.Tensor],
        *,
        strict: bool = True,
        ignore_mismatched_sizes: bool = False,
        source: str = "checkpoint",
    ) -> LoadReport:
        """Copy canonical-named tensors into the model; see `LoadReport` for what strict means."""
        own = self.checkpoint_state_dict()
        report = match_checkpoint(
            {k: tuple(v.shape) for k, v in own.items()},
            {k: tuple(v.shape) for k, v in tensors.items()},
            base_model_prefix=self.base_model_prefix,
            tied=self._tied_names(),
            ignore_mismatched_sizes=ignore_mismatched_sizes,
        )
        if strict:
            report.raise_if_failed(source)
        with torch.no_grad():
            for model_name, ckpt_name in report.mapping.items():
                target = own[model_name]
                target.copy_(tensors[ckpt_name].to(dtype=target.dtype))
        self.tie_weights()
        return report

    @classmethod
    def from_pretrained(
        cls,
        folder: str | os.PathLike,
        *,
        config: PretrainedConfig | None = None,
        dtype: torch.dtype | str | None = None,
        torch_dtype: torch.dtype | str | None = None,
        attn_implementation: str | None = None,
        strict: bool = True,
        ignore_mismatched_sizes: bool = False,
        output_loading_info: bool = False,
        **config_overrides: Any,
    ):
        """Load a model from a folder with `config.json` and weights in the reference layout.

        A base model loads from a head checkpoint and a head model from a base checkpoint; the
        head tensors that had to be created are listed in the loading info
        (`output_loading_info=True` returns `(model, info)`). Strict loading raises
        `CheckpointError` for missing, unexpected or mis-shaped tensors. `dtype` (or the
        reference's `torch_dtype`) casts the loaded model; `"auto"` keeps the checkpoint's dtype.
        """
        folder = Path(folder)
        if config is None:
            config = cls.config_class.from_pretrained(folder, **config_overrides)
        elif config_overrides:
            config = config.copy(**config_overrides)
        tensors, _ = read_model_weights(folder, "pt")
        # tf_model.h5 and flax_model.msgpack are read as numpy arrays
        tensors = {k: v if torch.is_tensor(v) else numpy_to_torch(v) for k, v in tensors.items()}
        model = cls(config, attn_implementation=attn_implementation)
        report = model.load_checkpoint_tensors(
            tensors,
            strict=strict,
            ignore_mismatched_sizes=ignore_mismatched_sizes,
            source=str(folder),
        )
        dtype = dtype if dtype is not None else torch_dtype
        if dtype == "auto":
            floating = [t.dtype for t in tensors.values() if t.dtype.is_floating_point]
            dtype = floating[0] if floating else None
        elif isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        if dtype is not None:
            model.to(dtype)
        model.eval()
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
        *,
        max_shard_size: int | str | None = "5GB",
        safe_serialization: bool = True,
    ) -> Path:
        """Write `config.json` and `model.safetensors` (sharded above `max_shard_size`)."""
        if not safe_serialization:
            raise ValueError(
                "aviary writes safetensors only; use `aviary convert` for other formats"
            )
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = self.config.copy(architectures=[type(self).__name__])
        tensors = {k: v.detach().contiguous() for k, v in self.checkpoint_state_dict().items()}
        write_checkpoint(tensors, folder, framework="pt", max_shard_size=max_shard_size)
        config.save_pretrained(folder)
        return folder


# -- losses shared by the heads of every family --------------------------------------------------

IGNORE_INDEX = -100


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the vocabulary; labels of -100 are ignored."""
    checks.check_same_shape("labels", labels.shape, logits.shape[:-1], "the input ids")
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE_INDEX
    )


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: position t predicts label t + 1 (labels are not pre-shifted)."""
    checks.check_same_shape("labels", labels.shape, logits.shape[:-1], "the input ids")
    return masked_lm_loss(logits[:, :-1].contiguous(), labels[:, 1:].contiguous())


def sequence_classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, config: PretrainedConfig
) -> torch.Tensor:
    """Regression (MSE), single-label (cross-entropy) or multi-label (BCE) by `problem_type`."""
    num_labels = logits.shape[-1]
    integer_labels = not labels.dtype.is_floating_point
    problem_type = checks.resolve_problem_type(config.problem_type, num_labels, integer_labels)
    if problem_type == "regression":
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(-1).float(), labels.squeeze(-1).float())
        return F.mse_loss(logits.float(), labels.float())
    if problem_type == "single_label_classification":
        return F.cross_entropy(logits.reshape(-1, num_labels).float(), labels.reshape(-1).long())
    checks.check_same_shape("labels", labels.shape, logits.shape, "the logits")
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Plain cross-entropy over the last axis (next-sentence prediction, multiple choice)."""
    return F.cross_entropy(logits.float(), labels.reshape(-1))


def token_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per token; labels of -100 are ignored."""
    return masked_lm_loss(logits, labels)


def span_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: torch.Tensor,
    end_positions: torch.Tensor,
) -> torch.Tensor:
    """Mean of the start and end cross-entropies. Positions outside the sequence are clamped to
    the sequence length and then ignored."""
    length = start_logits.shape[1]
    start_positions = start_positions.reshape(-1).clamp(0, length)
    end_positions = end_positions.reshape(-1).clamp(0, length)
    start = F.cross_entropy(start_logits.float(), start_positions, ignore_index=length)
    end = F.cross_entropy(end_logits.float(), end_positions, ignore_index=length)
    return (start + end) / 2


def span_outputs(
    logits: torch.Tensor,
    start_positions: torch.Tensor | None = None,
    end_positions: torch.Tensor | None = None,
) -> dict[str, torch.Tensor | None]:
    """A span head's `[B, L, 2]` logits -> its output fields: the start and end logits `[B, L]`
    and their `span_loss` (None unless both positions are given)."""
    start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
    loss = None
    if start_positions is not None and end_positions is not None:
        loss = span_loss(start_logits, end_logits, start_positions, end_positions)
    return {"loss": loss, "start_logits": start_logits, "end_logits": end_logits}
