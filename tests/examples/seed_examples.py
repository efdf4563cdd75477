"""What the seed-example tests share besides their fixtures: the local stand-in for the dataset
text and a check for losses (the checkpoint folders are fixtures in tests/conftest.py)."""

from __future__ import annotations

import math

# The BigBird examples read row 81514 of `rajpurkar/squad_v2` (a download). This local text stands
# in for its context with what the examples rely on: the sentence at [332:398], one "maximum" to
# mask, and 919 tokens with the BigBird tokenizer of `big_bird_folder` ([CLS] + 917 + [SEP]).
_CONTEXT = (
    "The climate of the great desert is one of the driest and hottest on the planet. Rain is rare "
    "and falls on only a few days of the year and in many places years pass without any rain "
    "at all. The air is very dry, the sky is clear for most of the year and the sun shines for more "
    "hours than anywhere else on Earth. In the summer months "
    "the highest values are very close to the theoretical maximum value"
    " of solar energy that can reach the ground, because there are almost no clouds and very little "
    "water vapour in the air to absorb the light. During the day the sand and the rocks take in this "
    "energy and become very hot, and the air above them is heated in turn. Temperatures in the shade "
    "often rise above forty degrees, and on the hottest days they can reach close to fifty degrees. "
    "At night the picture changes completely. The dry air and the clear sky let the heat escape into "
    "space, so the ground cools quickly after sunset, and the temperature can fall by more than twenty "
    "degrees before the sun rises again. In the winter months the nights can be cold, and frost is "
    "sometimes seen on the high plateaus and in the mountains. The wind is another important part of "
    "the climate. Strong winds blow across the open land for much of the year, lifting dust and sand "
    "high into the air and carrying them over long distances, sometimes as far as other continents. "
    "These storms can last for several days, turn the sky brown and make it hard to see even a short "
    "distance ahead. Plants and animals that live in the desert have found many ways to survive the "
    "heat and the lack of water. Some plants have deep roots that reach water far below the surface, "
    "while others store it in stems."
)
# squad_ds[81514]["question"], as the seed document prints it.
_QUESTION = "During daytime how high can the temperatures reach?"
# Stands in for `load_dataset("rajpurkar/squad_v2", split="train")`: the one row the examples read.
SQUAD_V2_TRAIN = {81514: {"context": _CONTEXT, "question": _QUESTION}}


def is_finite_scalar(value) -> bool:
    """Whether `value` (a loss of any framework) is one finite number."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "numpy"):
        value = value.numpy()
    return getattr(value, "shape", ()) == () and math.isfinite(float(value))
