"""The effect model of the demo trial: what a subject's data look like given their arm.

Every function takes a :class:`random.Random` of its own subject and returns plain numbers, so
the model can be read (and changed) without the services that store the data. The figures are
stated in ``docs/user_guide.md`` ("Demo trial"); they are plausible, not the trial's results.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

#: Mean change of the NASA score at W16 by arm, and the SD of the change.
NASA_CHANGE = {"DUPI": -2.5, "PBO": -0.5}
NASA_CHANGE_SD = 2.0
#: Regression of the change on the baseline (a higher baseline improves more).
NASA_BASELINE_SLOPE = -0.3
#: Pruritus and pain (0–10): full effect by arm, reached with a 4-week time constant.
PRURITUS_EFFECT = {"DUPI": -3.5, "PBO": -1.0}
PAIN_EFFECT = {"DUPI": -2.5, "PBO": -0.7}
#: Fraction of the effect kept at W28, 14 weeks after the last dose.
W28_KEPT = 0.6
#: Skin infections per two weeks (Poisson).
INFECTION_RATE = {"DUPI": 0.12, "PBO": 0.25}
#: Topical corticosteroid tubes (30 g) per two weeks (Poisson).
TCS_TUBES = {"DUPI": 1.2, "PBO": 2.0}
#: DLQI total change at W16 (W28 keeps :data:`W28_KEPT` of it).
DLQI_CHANGE = {"DUPI": -6.0, "PBO": -2.0}
#: TEWL (g/m²/h) change at W16.
TEWL_CHANGE = {"DUPI": -10.0, "PBO": -2.0}
#: log10 total IgE change at W16.
LOG_IGE_CHANGE = {"DUPI": -0.35, "PBO": 0.0}
#: Probability of each adverse event over the treatment period, by arm.
AE_RISKS = {
    "Conjunctivitis": {"DUPI": 0.30, "PBO": 0.08},
    "Injection site reaction": {"DUPI": 0.20, "PBO": 0.10},
    "Nasopharyngitis": {"DUPI": 0.25, "PBO": 0.25},
    "Headache": {"DUPI": 0.15, "PBO": 0.15},
}


def clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


@dataclass(frozen=True)
class Baseline:
    """One subject's D0 values."""

    nasa: int
    pruritus: float
    pain: float
    dlqi: int
    tewl: float
    log_ige: float


def baseline(rng: random.Random) -> Baseline:
    return Baseline(
        nasa=round(clip(rng.gauss(8, 1.5), 5, 12)),
        pruritus=round(clip(rng.gauss(7, 1.5), 2, 10), 1),
        pain=round(clip(rng.gauss(5, 1.5), 1, 10), 1),
        dlqi=round(clip(rng.gauss(15, 4), 4, 28)),
        tewl=round(clip(rng.gauss(45, 10), 15, 90), 1),
        log_ige=clip(rng.gauss(3.4, 0.4), 2.3, 4.6),
    )


def nasa_w16(rng: random.Random, arm: str, base: Baseline) -> int:
    change = rng.gauss(NASA_CHANGE[arm] + NASA_BASELINE_SLOPE * (base.nasa - 8), NASA_CHANGE_SD)
    return round(clip(base.nasa + change, 0, 12))


def symptom(
    rng: random.Random, arm: str, start: float, effects: dict[str, float], week: int
) -> float:
    """Pruritus or pain at ``week``: baseline plus an effect reached with a 4-week constant."""
    reached = 1 - math.exp(-week / 4)
    kept = W28_KEPT if week > 16 else 1.0
    return round(clip(start + effects[arm] * reached * kept + rng.gauss(0, 1.0), 0, 10), 1)


def dlqi_items(rng: random.Random, total: int) -> list[int]:
    """Ten DLQI answers (0–3) adding up to ``total`` (0–30)."""
    items = [0] * 10
    for _ in range(int(clip(total, 0, 30))):
        index = rng.choice([i for i, v in enumerate(items) if v < 3])
        items[index] += 1
    return items


def dlqi_total(rng: random.Random, arm: str, base: Baseline, week: int) -> int:
    kept = W28_KEPT if week > 16 else 1.0
    return round(clip(base.dlqi + DLQI_CHANGE[arm] * kept + rng.gauss(0, 3), 0, 30))
