"""The Auto classes' framework-neutral half: `AutoConfig`, `AutoTokenizer`, and the one dispatch
table `(model_type, task) -> class name` that the PyTorch, TF and Flax Auto model classes share.

A framework's `auto.py` only says where its classes live (`AutoModelBase._lookup`) and how a
model is built from a config; the names, the tasks and every error text are here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from aviary.core.configs import CONFIG_CLASSES, PretrainedConfig, load_config, read_config_file
from aviary.core.tokenizers import (
    BertTokenizer,
    BertTokenizerFast,
    BigBirdTokenizer,
    BigBirdTokenizerFast,
    PegasusTokenizer,
    PegasusTokenizerFast,
)
from aviary.core.tokenizers.base import TOKENIZER_CONFIG_FILE

# Auto class name (PyTorch spelling) -> task.
AUTO_TASKS: dict[str, str] = {
    "AutoModel": "base",
    "AutoModelForPreTraining": "pretraining",
    "AutoModelForMaskedLM": "masked_lm",
    "AutoModelForCausalLM": "causal_lm",
    "AutoModelForSeq2SeqLM": "seq2seq_lm",
    "AutoModelForSequenceClassification": "sequence_classification",
    "AutoModelForMultipleChoice": "multiple_choice",
    "AutoModelForTokenClassification": "token_classification",
    "AutoModelForQuestionAnswering": "question_answering",
    "AutoModelForNextSentencePrediction": "next_sentence_prediction",
}
TASK_AUTO_NAMES: dict[str, str] = {task: name for name, task in AUTO_TASKS.items()}

# model_type -> task -> class name without a framework prefix (the reference library's mapping).
MODEL_CLASS_NAMES: dict[str, dict[str, str]] = {
    "bert": {
        "base": "BertModel",
        "pretraining": "BertForPreTraining",
        "masked_lm": "BertForMaskedLM",
        "causal_lm": "BertLMHeadModel",
        "sequence_classification": "BertForSequenceClassification",
        "multiple_choice": "BertForMultipleChoice",
        "token_classification": "BertForTokenClassification",
        "question_answering": "BertForQuestionAnswering",
        "next_sentence_prediction": "BertForNextSentencePrediction",
    },
    "big_bird": {
        "base": "BigBirdModel",
        "pretraining": "BigBirdForPreTraining",
        "masked_lm": "BigBirdForMaskedLM",
        "causal_lm": "BigBirdForCausalLM",
        "sequence_classification": "BigBirdForSequenceClassification",
        "multiple_choice": "BigBirdForMultipleChoice",
        "token_classification": "BigBirdForTokenClassification",
        "question_answering": "BigBirdForQuestionAnswering",
    },
    "bigbird_pegasus": {
        "base": "BigBirdPegasusModel",
        "causal_lm": "BigBirdPegasusForCausalLM",
        "seq2seq_lm": "BigBirdPegasusForConditionalGeneration",
        "sequence_classification": "BigBirdPegasusForSequenceClassification",
        "question_answering": "BigBirdPegasusForQuestionAnswering",
    },
}

# The prefix of each framework's class names, and the classes a framework names differently
# (the reference's Flax BERT causal LM is `FlaxBertForCausalLM`, not `FlaxBertLMHeadModel`).
FRAMEWORK_PREFIXES: dict[str, str] = {"pt": "", "tf": "TF", "flax": "Flax"}
FRAMEWORK_RENAMES: dict[str, dict[str, str]] = {"flax": {"BertLMHeadModel": "BertForCausalLM"}}

# Tokenizer class name (without `Fast`) -> (slow class, fast class); model_type -> that name.
TOKENIZER_CLASSES: dict[str, tuple[type, type]] = {
    "BertTokenizer": (BertTokenizer, BertTokenizerFast),
    "BigBirdTokenizer": (BigBirdTokenizer, BigBirdTokenizerFast),
    "PegasusTokenizer": (PegasusTokenizer, PegasusTokenizerFast),
}
MODEL_TYPE_TOKENIZERS: dict[str, str] = {
    "bert": "BertTokenizer",
    "big_bird": "BigBirdTokenizer",
    "bigbird_pegasus": "PegasusTokenizer",
}


def model_class_name(model_type: str, task: str, framework: str = "pt") -> str:
    """The class a task resolves to for a model type in a framework, e.g.
    `("big_bird", "masked_lm", "tf") -> "TFBigBirdForMaskedLM"`.

    Raises `ValueError` listing the model types for an unknown one, and, for a task the family
    lacks, the Auto classes the family has and the model types the task covers.
    """
    prefix = FRAMEWORK_PREFIXES[framework]
    if task not in TASK_AUTO_NAMES:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASK_AUTO_NAMES)}")
    auto_name = prefix + TASK_AUTO_NAMES[task]
    family = MODEL_CLASS_NAMES.get(model_type)
    if family is None:
        raise ValueError(
            f"{auto_name}: model_type={model_type!r} is not one of {', '.join(MODEL_CLASS_NAMES)}"
        )
    if task not in family:
        has = ", ".join(
            f"{prefix}{TASK_AUTO_NAMES[t]} ({_framework_name(n, framework)})"
            for t, n in family.items()
        )
        covered = [m for m, classes in MODEL_CLASS_NAMES.items() if task in classes]
        raise ValueError(
            f"{auto_name} has no class for model_type={model_type!r} (it covers "
            f"{', '.join(covered)}); {model_type} has {has}"
        )
    return _framework_name(family[task], framework)


def _framework_name(name: str, framework: str) -> str:
    return FRAMEWORK_PREFIXES[framework] + FRAMEWORK_RENAMES.get(framework, {}).get(name, name)


def auto_class_for(architecture: str) -> tuple[str, str] | None:
    """`(Auto class name, model_type)` of a PyTorch class name as `config.json`'s `architectures`
    records it (`"BigBirdForMaskedLM" -> ("AutoModelForMaskedLM", "big_bird")`); `None` when no
    Auto class resolves to it."""
    for model_type, family in MODEL_CLASS_NAMES.items():
        for task, name in family.items():
            if name == architecture:
                return TASK_AUTO_NAMES[task], model_type
    return None


def _describe(task: str, framework: str) -> str:
    return ", ".join(
        f"{_framework_name(family[task], framework)} ({model_type})"
        for model_type, family in MODEL_CLASS_NAMES.items()
        if task in family
    )


def _model_type_of(folder: str | os.PathLike) -> str:
    data = read_config_file(folder)
    model_type = data.get("model_type")
    if model_type is None:
        raise ValueError(f"{folder}: config.json has no model_type, so no Auto class can pick one")
    return model_type


class AutoModelBase:
    """Generic Auto model class: picks the class of `config.json`'s `model_type` for the
    subclass's task (read from its name: `AutoModelForMaskedLM`, `TFAutoModel`, ...).

    A framework subclasses it once, setting `framework` and `_lookup`; each Auto class is then a
    one-line subclass of that.
    """

    framework: ClassVar[str] = "pt"
    task: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__name__.removeprefix(FRAMEWORK_PREFIXES[cls.framework])
        cls.task = AUTO_TASKS.get(name)
        if cls.task is not None and cls.__doc__ is None:
            # The Auto classes are one-line subclasses: their docstring says what they load.
            cls.__doc__ = f"Loads {_describe(cls.task, cls.framework)}."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        name = type(self).__name__
        raise TypeError(
            f"{name} is not built directly: use {name}.from_pretrained(folder) or "
            f"{name}.from_config(config)"
        )

    @classmethod
    def _lookup(cls, name: str) -> type | None:
        """The framework's class called `name`, or None if the framework lacks it."""
        raise NotImplementedError

    @classmethod
    def _build(cls, model_class: type, config: PretrainedConfig, **kwargs: Any) -> Any:
        """A model with random weights (a framework may need to create its variables)."""
        return model_class(config, **kwargs)

    @classmethod
    def model_class(cls, model_type: str) -> type:
        """The class this Auto class resolves to for `model_type`."""
        if cls.task is None:
            raise TypeError(f"{cls.__name__} is a base class, not an Auto class of a task")
        name = model_class_name(model_type, cls.task, cls.framework)
        found = cls._lookup(name)
        if found is None:
            raise ValueError(
                f"{cls.__name__}: aviary.{cls.framework} has no {name} (model_type={model_type!r})"
            )
        return found

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, *args: Any, **kwargs: Any) -> Any:
        """Load the class `folder/config.json`'s `model_type` resolves to (or that of a `config=`
        given); every argument passes through to that class's `from_pretrained`."""
        config = kwargs.get("config")
        model_type = config.model_type if config is not None else _model_type_of(folder)
        return cls.model_class(model_type).from_pretrained(folder, *args, **kwargs)

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any) -> Any:
        """A model of the class `config.model_type` resolves to, with random weights."""
        if not isinstance(config, PretrainedConfig):
            raise TypeError(
                f"{cls.__name__}.from_config needs a config, got {type(config).__name__}"
            )
        return cls._build(cls.model_class(config.model_type), config, **kwargs)


class AutoConfig:
    """Builds the config class `config.json`'s `model_type` names."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("AutoConfig is not built directly: use AutoConfig.from_pretrained(folder)")

    @staticmethod
    def from_pretrained(folder: str | os.PathLike, **overrides: Any) -> PretrainedConfig:
        """Read `folder/config.json` (or the given JSON file); `overrides` replace its values."""
        return load_config(folder, **overrides)

    @staticmethod
    def for_model(model_type: str, **kwargs: Any) -> PretrainedConfig:
        """A config of `model_type` with its defaults, `kwargs` replacing some of them."""
        if model_type not in CONFIG_CLASSES:
            raise ValueError(f"model_type={model_type!r} is not one of {', '.join(CONFIG_CLASSES)}")
        return CONFIG_CLASSES[model_type](**kwargs)


class AutoTokenizer:
    """Loads the tokenizer a folder names: `tokenizer_config.json`'s `tokenizer_class`, else the
    tokenizer of `config.json`'s `model_type`; the fast one unless `use_fast=False`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "AutoTokenizer is not built directly: use AutoTokenizer.from_pretrained(folder)"
        )

    @staticmethod
    def tokenizer_class(folder: str | os.PathLike, use_fast: bool = True) -> type:
        """The tokenizer class `from_pretrained` would load from `folder`."""
        directory = Path(folder)
        if not directory.is_dir():
            raise FileNotFoundError(
                f"{directory} is not a local directory; aviary loads tokenizers from folders only "
                "(it never downloads)"
            )
        name = None
        config_path = directory / TOKENIZER_CONFIG_FILE
        if config_path.is_file():
            try:
                name = json.loads(config_path.read_text(encoding="utf-8")).get("tokenizer_class")
            except json.JSONDecodeError as error:
                raise ValueError(f"{config_path} is not valid JSON: {error}") from None
        if name is None:
            if not (directory / "config.json").is_file():
                raise ValueError(
                    f"{directory} has neither a tokenizer_config.json with tokenizer_class nor "
                    "a config.json with model_type: no tokenizer can be picked"
                )
            model_type = _model_type_of(directory)
            if model_type not in MODEL_TYPE_TOKENIZERS:
                raise ValueError(
                    f"{directory}: model_type={model_type!r} is not one of "
                    f"{', '.join(MODEL_TYPE_TOKENIZERS)}"
                )
            name = MODEL_TYPE_TOKENIZERS[model_type]
        classes = TOKENIZER_CLASSES.get(str(name).removesuffix("Fast"))
        if classes is None:
            known = ", ".join(f"{n}, {n}Fast" for n in TOKENIZER_CLASSES)
            raise ValueError(f"{config_path}: tokenizer_class={name!r} is not one of {known}")
        return classes[1] if use_fast else classes[0]

    @classmethod
    def from_pretrained(
        cls, folder: str | os.PathLike, *args: Any, use_fast: bool = True, **kwargs: Any
    ) -> Any:
        """Load the folder's tokenizer; `kwargs` pass through to its `from_pretrained`."""
        return cls.tokenizer_class(folder, use_fast).from_pretrained(folder, *args, **kwargs)
