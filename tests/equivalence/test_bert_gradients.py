"""Gradients of the same loss w.r.t. the same weights agree between PyTorch autograd,
`tf.GradientTape` and `jax.grad`; and each framework's parameters map to the same canonical names
and shapes."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tf = pytest.importorskip("tensorflow")
jax = pytest.importorskip("jax")

import aviary.flax  # noqa: E402
import aviary.pt  # noqa: E402
import aviary.tf  # noqa: E402
from aviary.conversion import frameworks  # noqa: E402
from aviary.flax import modeling_utils as flax_losses  # noqa: E402
from test_bert_equivalence import HEADS, checkpoint, make_inputs  # noqa: E402

pytestmark = pytest.mark.cross
GRADIENT_RTOL = 1e-4

# (head, loss inputs, Flax loss function of (logits-like outputs, labels))
CASES = {
    "BertForMaskedLM": lambda out, inputs: flax_losses.masked_lm_loss(out.logits, inputs["labels"]),
    "BertForSequenceClassification": lambda out, inputs: flax_losses.sequence_classification_loss(
        out.logits, inputs["labels"], out_config(out)
    ),
    "BertForQuestionAnswering": lambda out, inputs: flax_losses.span_loss(
        out.start_logits, out.end_logits, inputs["start_positions"], inputs["end_positions"]
    ),
}


def out_config(_):
    return aviary.BertConfig(num_labels=3)


def pt_gradients(head, folder, inputs):
    model = aviary.pt.__dict__[head].from_pretrained(folder)
    model.eval()  # dropout is 0 anyway; eval keeps every framework on the same path
    loss = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).loss
    loss.backward()
    # A parameter the loss does not reach (the absolute table, with relative positions) has no
    # gradient in PyTorch and TF and a zero one in JAX: count it as zero everywhere.
    return float(loss.detach()), {
        n: p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape), np.float32)
        for n, p in model.named_parameters()
    }


def tf_gradients(head, folder, inputs):
    model = getattr(aviary.tf, "TF" + head).from_pretrained(folder)
    variables = model.canonical_variables()
    with tf.GradientTape() as tape:
        loss = model({k: tf.constant(v) for k, v in inputs.items()}, training=False).loss
    names = list(variables)
    grads = tape.gradient(loss, [variables[n][0] for n in names])
    out = {}
    for name, grad in zip(names, grads):
        variable = variables[name][0]
        grad = (
            np.zeros(variable.shape, np.float32)
            if grad is None
            else tf.convert_to_tensor(grad).numpy()
        )
        out[name] = grad.T if variables[name][1] else grad
    return float(loss), out


def flax_gradients(head, folder, inputs):
    model = frameworks.model_class(head, "flax").from_pretrained(folder)
    model_inputs = {
        k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "token_type_ids")
    }

    def loss_fn(params):
        return CASES[head](model(**model_inputs, params=params), inputs)

    loss, grads = jax.value_and_grad(loss_fn)(model.params)
    return float(loss), model.checkpoint_tensors(grads)


@pytest.mark.parametrize("head", list(CASES))
@pytest.mark.parametrize("position_type", ["absolute", "relative_key_query"])
def test_gradients_agree(head, position_type) -> None:
    folder = checkpoint(head, position_type)
    inputs = make_inputs(head, padded=True)
    results = {
        "pt": pt_gradients(head, folder, inputs),
        "tf": tf_gradients(head, folder, inputs),
        "flax": flax_gradients(head, folder, inputs),
    }
    reference_loss, reference = results["pt"]
    assert len(reference) > 20
    overall = max(float(np.max(np.abs(g))) for g in reference.values())
    for framework in ("tf", "flax"):
        loss, grads = results[framework]
        assert abs(loss - reference_loss) <= 1e-5 * max(1.0, abs(reference_loss)), framework
        assert set(grads) == set(reference), f"{framework}: {set(grads) ^ set(reference)}"
        for name, expected in reference.items():
            scale = float(np.max(np.abs(expected)))
            diff = float(np.max(np.abs(grads[name] - expected)))
            # Relative to the tensor's largest gradient, with a floor for gradients that are 0 up
            # to rounding (key biases and the span head's bias, cancelled by softmax's shift
            # invariance): a millionth of the model's largest gradient.
            assert diff <= GRADIENT_RTOL * scale + 1e-6 * overall, (
                f"{framework} {name}: {diff:.2e} vs scale {scale:.2e}"
            )


@pytest.mark.parametrize("head", HEADS)
def test_parameter_trees_map_to_the_same_canonical_names(head) -> None:
    folder = checkpoint(head, "relative_key")
    pt_model = aviary.pt.__dict__[head].from_pretrained(folder)
    expected = {k: tuple(v.shape) for k, v in pt_model.checkpoint_state_dict().items()}
    tf_model = getattr(aviary.tf, "TF" + head).from_pretrained(folder)
    flax_model = frameworks.model_class(head, "flax").from_pretrained(folder)
    for framework, tensors in (
        ("tf", tf_model.checkpoint_tensors()),
        ("flax", flax_model.checkpoint_tensors()),
    ):
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        assert shapes == expected, f"{framework}: {set(shapes) ^ set(expected)}"
