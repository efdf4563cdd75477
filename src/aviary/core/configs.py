"""Model configurations: `BertConfig`, `BigBirdConfig`, `BigBirdPegasusConfig`.

A config is a plain object whose attributes are the reference library's `config.json` keys. Known
parameters are validated when the config is built; keys this library does not know (real checkpoints
carry keys such as `gradient_checkpointing` or `_name_or_path`) are kept as attributes and written
back unchanged by `save_pretrained`.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from aviary.core.io import atomic_write_text

CONFIG_NAME = "config.json"

# Activation names every framework package implements (`aviary.<framework>` maps them to functions).
ACTIVATIONS = (
    "gelu",
    "gelu_new",
    "gelu_fast",
    "gelu_pytorch_tanh",
    "quick_gelu",
    "relu",
    "silu",
    "swish",
    "selu",
    "tanh",
    "sigmoid",
    "mish",
    "linear",
)
POSITION_EMBEDDING_TYPES = ("absolute", "relative_key", "relative_key_query")
ATTENTION_TYPES = ("original_full", "block_sparse")
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")

# Generic fields every config carries, with the reference library's defaults. `num_labels` is not
# stored: it is the length of `id2label`.
_COMMON_DEFAULTS: dict[str, Any] = {
    "return_dict": True,
    "output_hidden_states": False,
    "output_attentions": False,
    "is_decoder": False,
    "add_cross_attention": False,
    "is_encoder_decoder": False,
    "tie_word_embeddings": True,
    "chunk_size_feed_forward": 0,
    "architectures": None,
    "problem_type": None,
    "bos_token_id": None,
    "eos_token_id": None,
    "sep_token_id": None,
    "decoder_start_token_id": None,
}


class PretrainedConfig:
    """Base class: generic fields, validation, and `config.json` reading and writing.

    Subclasses set `model_type` and `defaults` (the family's parameters in signature order).
    """

    model_type: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # Alternative names the reference accepts for a parameter (`hidden_size` for `d_model`, ...).
    attribute_map: ClassVar[dict[str, str]] = {}

    def __init__(self, **kwargs: Any) -> None:
        kwargs = {self.attribute_map.get(k, k): v for k, v in kwargs.items()}
        kwargs.pop("model_type", None)
        kwargs.pop("use_return_dict", None)
        num_labels = kwargs.pop("num_labels", None)
        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)

        for name, default in {**_COMMON_DEFAULTS, **self.defaults}.items():
            object.__setattr__(self, name, copy.deepcopy(kwargs.pop(name, default)))

        if id2label is None:
            id2label = {i: f"LABEL_{i}" for i in range(2 if num_labels is None else num_labels)}
        self.id2label = {int(k): str(v) for k, v in id2label.items()}
        if num_labels is not None and num_labels != len(self.id2label):
            raise ValueError(
                f"num_labels={num_labels} does not match id2label with {len(self.id2label)} labels"
            )
        if label2id is None:
            label2id = {v: k for k, v in self.id2label.items()}
        self.label2id = {str(k): int(v) for k, v in label2id.items()}

        # Whatever is left is not a parameter of this family: keep it so it is written back.
        self._extra_keys: list[str] = []
        for name, value in kwargs.items():
            object.__setattr__(self, name, value)
            self._extra_keys.append(name)
        self.validate()

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: resolve the reference's alternative names.
        mapped = type(self).attribute_map.get(name)
        if mapped is not None:
            return getattr(self, mapped)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(self.attribute_map.get(name, name), value)

    # -- derived fields ---------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        """Number of labels of a classification head (the length of `id2label`)."""
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, value: int) -> None:
        if value != self.num_labels:
            self.id2label = {i: f"LABEL_{i}" for i in range(value)}
            self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def use_return_dict(self) -> bool:
        """Whether models return output objects (True) or plain tuples."""
        return bool(self.return_dict)

    # -- validation -------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise `ValueError` naming the first invalid field."""
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ValueError(
                f"problem_type={self.problem_type!r} is not one of {', '.join(PROBLEM_TYPES)}"
            )
        if self.num_labels < 1:
            raise ValueError(f"num_labels must be positive, got {self.num_labels}")

    def _check_positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    def _check_probability(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if callable(value) and name in ("hidden_act", "activation_function"):
            return
        if value not in choices:
            raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}")

    def _check_divisible(self, width: str, heads: str) -> None:
        if getattr(self, width) % getattr(self, heads) != 0:
            raise ValueError(
                f"{width}={getattr(self, width)} is not a multiple of "
                f"{heads}={getattr(self, heads)}"
            )

    def _check_encoder_fields(self) -> None:
        """Checks shared by the BERT-style configs (BERT and BigBird)."""
        self._check_positive(
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        )
        self._check_divisible("hidden_size", "num_attention_heads")
        self._check_choice("hidden_act", ACTIVATIONS)
        self._check_probability(
            "hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"
        )
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps!r}")
        if not self.initializer_range > 0:
            raise ValueError(f"initializer_range must be positive, got {self.initializer_range!r}")

    # -- (de)serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The `config.json` content: every parameter, generic field and kept unknown key."""
        out: dict[str, Any] = {}
        for name in (*_COMMON_DEFAULTS, *self.defaults):
            out[name] = copy.deepcopy(getattr(self, name))
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = dict(self.label2id)
        for name in self._extra_keys:
            out[name] = copy.deepcopy(getattr(self, name))
        out["model_type"] = self.model_type
        for name in ("hidden_act", "activation_function"):
            if callable(out.get(name)):
                raise ValueError(f"{name} is a Python function and cannot be written to JSON")
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], **overrides: Any) -> PretrainedConfig:
        """Build a config from a `config.json` dictionary; `overrides` replace its values."""
        model_type = data.get("model_type")
        if model_type is not None and cls.model_type and model_type != cls.model_type:
            raise ValueError(
                f"config has model_type={model_type!r}, but {cls.__name__} expects "
                f"{cls.model_type!r}"
            )
        data = dict(data)
        # A new number of labels replaces the stored label names (a new head).
        new_labels = overrides.get("num_labels")
        if "id2label" not in overrides and new_labels not in (
            None,
            len(data.get("id2label") or {}),
        ):
            data.pop("id2label", None)
            data.pop("label2id", None)
        return cls(**{**data, **overrides})

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> PretrainedConfig:
        return cls.from_dict(_read_json(Path(path)))

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **overrides: Any) -> PretrainedConfig:
        """Read `folder/config.json` (or the given JSON file)."""
        return cls.from_dict(read_config_file(folder), **overrides)

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write `folder/config.json` atomically; returns its path."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        target = path / CONFIG_NAME
        atomic_write_text(target, self.to_json_string())
        return target

    def copy(self, **overrides: Any) -> PretrainedConfig:
        """A new config with the same values, `overrides` replacing some of them."""
        return type(self).from_dict(self.to_dict(), **overrides)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


class BertConfig(PretrainedConfig):
    """Configuration of a BERT model (defaults: bert-base-uncased)."""

    model_type = "bert"
    defaults = {
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "use_cache": True,
        "classifier_dropout": None,
    }

    def validate(self) -> None:
        super().validate()
        self._check_encoder_fields()
        self._check_choice("position_embedding_type", POSITION_EMBEDDING_TYPES)


class BigBirdConfig(PretrainedConfig):
    """Configuration of a BigBird model (defaults: google/bigbird-roberta-base)."""

    model_type = "big_bird"
    defaults = {
        "vocab_size": 50358,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "hidden_act": "gelu_new",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 4096,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "use_cache": True,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "sep_token_id": 66,
        "attention_type": "block_sparse",
        "use_bias": True,
        "rescale_embeddings": False,
        "block_size": 64,
        "num_random_blocks": 3,
        "classifier_dropout": None,
    }

    def validate(self) -> None:
        super().validate()
        self._check_encoder_fields()
        self._check_choice("attention_type", ATTENTION_TYPES)
        self._check_positive("block_size", "num_random_blocks")


class BigBirdPegasusConfig(PretrainedConfig):
    """Configuration of a BigBirdPegasus encoder-decoder (defaults: bigbird-pegasus-large-arxiv)."""

    model_type = "bigbird_pegasus"
    attribute_map = {
        "num_attention_heads": "encoder_attention_heads",
        "hidden_size": "d_model",
        "attention_probs_dropout_prob": "attention_dropout",
        "initializer_range": "init_std",
    }
    defaults = {
        "vocab_size": 96103,
        "max_position_embeddings": 4096,
        "encoder_layers": 16,
        "encoder_ffn_dim": 4096,
        "encoder_attention_heads": 16,
        "decoder_layers": 16,
        "decoder_ffn_dim": 4096,
        "decoder_attention_heads": 16,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
        "use_cache": True,
        "is_encoder_decoder": True,
        "activation_function": "gelu_new",
        "d_model": 1024,
        "dropout": 0.1,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "init_std": 0.02,
        "decoder_start_token_id": 2,
        "classifier_dropout": 0.0,
        "scale_embedding": True,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 1,
        "attention_type": "block_sparse",
        "block_size": 64,
        "num_random_blocks": 3,
        "use_bias": False,
    }

    def __init__(self, **kwargs: Any) -> None:
        # The seed docs call this parameter `scale_embeddings`; checkpoints say `scale_embedding`.
        if "scale_embeddings" in kwargs:
            kwargs["scale_embedding"] = kwargs.pop("scale_embeddings")
        # Derived by the reference and written to config.json; ours is `encoder_layers`.
        kwargs.pop("num_hidden_layers", None)
        super().__init__(**kwargs)

    @property
    def num_hidden_layers(self) -> int:
        """Number of encoder layers (the reference's alias)."""
        return self.encoder_layers

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["num_hidden_layers"] = self.encoder_layers
        return dict(sorted(out.items()))

    def validate(self) -> None:
        super().validate()
        self._check_positive(
            "vocab_size",
            "max_position_embeddings",
            "encoder_layers",
            "encoder_ffn_dim",
            "encoder_attention_heads",
            "decoder_layers",
            "decoder_ffn_dim",
            "decoder_attention_heads",
            "d_model",
            "block_size",
            "num_random_blocks",
        )
        self._check_divisible("d_model", "encoder_attention_heads")
        self._check_divisible("d_model", "decoder_attention_heads")
        self._check_choice("activation_function", ACTIVATIONS)
        self._check_choice("attention_type", ATTENTION_TYPES)
        self._check_probability(
            "dropout",
            "attention_dropout",
            "activation_dropout",
            "classifier_dropout",
            "encoder_layerdrop",
            "decoder_layerdrop",
        )
        if not self.init_std > 0:
            raise ValueError(f"init_std must be positive, got {self.init_std!r}")


CONFIG_CLASSES: dict[str, type[PretrainedConfig]] = {
    cls.model_type: cls for cls in (BertConfig, BigBirdConfig, BigBirdPegasusConfig)
}


def load_config(folder: str | os.PathLike, **overrides: Any) -> PretrainedConfig:
    """Read a `config.json` and build the config class its `model_type` names."""
    path = _config_path(folder)
    data = _read_json(path)
    model_type = data.get("model_type")
    if model_type not in CONFIG_CLASSES:
        raise ValueError(
            f"{path}: model_type={model_type!r} is not one of {', '.join(CONFIG_CLASSES)}"
        )
    return CONFIG_CLASSES[model_type].from_dict(data, **overrides)


def read_config_file(folder: str | os.PathLike) -> dict[str, Any]:
    """The JSON object of `folder/config.json` (or of the given JSON file), with clear errors."""
    return _read_json(_config_path(folder))


def _config_path(folder: str | os.PathLike) -> Path:
    path = Path(folder)
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} found at {path}")
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data
