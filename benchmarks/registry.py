"""The session's benchmark results, for the relation checks and the paper report.

Each benchmark adds the measurement it recorded under a :class:`Key` (phase, model, image,
sampler, variant), so that the same config measured by one family can be reused by another
(the medium 3D 192³ run serves Fig. 1, Fig. 2 and Fig. 3). Under pytest-xdist every worker
has its own registry; conftest.py ships it to the controller as JSON (``workeroutput``) so
the paper report sees every result, while relation checks in a worker see only its own
(they skip when theirs are missing).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_co2.meter import Measurement

from .paper import KG_PER_KWH, PAPER_N


@dataclass(frozen=True, order=True)
class Key:
    phase: str  # "train" | "synth"
    model: str  # "3d-medium"
    image: str  # "3d-192"
    sampler: str = ""  # synthesis: "ddpm-1000", "ddim-200"
    variant: str = ""  # "", "ddp-gloo-2"

    @property
    def id(self) -> str:
        return "/".join(
            p for p in (self.phase, self.model, self.image, self.sampler, self.variant) if p
        )


def train_key(model: str, image: str, variant: str = "") -> Key:
    return Key("train", model, image, "", variant)


def synth_key(
    model: str, image: str, kind: str = "ddpm", steps: int = 1000, variant: str = ""
) -> Key:
    return Key("synth", model, image, f"{kind}-{steps}", variant)


@dataclass(frozen=True)
class PaperAccounting:
    """A measurement projected to the paper's N and accounted like the paper (EU27, PUE 1.55)."""

    n: int
    unit: str
    energy_kwh: float
    std_kwh: float
    ci95_kwh: float  # half-width of the 95% interval of the mean (NaN with one window)
    kg: float
    std_kg: float

    @classmethod
    def of(cls, m: Measurement) -> PaperAccounting:
        n = PAPER_N.get(m.unit, round(m.units))
        p = m.project(n)
        return cls(
            n,
            m.unit,
            p.energy_kwh,
            p.std_kwh,
            p.ci95_kwh,
            p.energy_kwh * KG_PER_KWH,
            p.std_kwh * KG_PER_KWH,
        )

    @property
    def disturbed(self) -> bool:
        """Window-to-window spread above 20%: likely other load on the machine."""
        return math.isfinite(self.std_kwh) and self.std_kwh > 0.2 * self.energy_kwh


def growth_check(series: list[tuple[str, PaperAccounting]]) -> tuple[list[str], list[str]]:
    """Check that energies grow along ``series``: (contradictions, inconclusive pairs).

    A pair that does not grow contradicts the finding only when the drop is larger than the
    two 95% intervals of the means combined; otherwise the measurements are too noisy to tell
    (typically other load on a shared machine) and the pair is inconclusive.
    """
    bad, unsure = [], []
    for (la, a), (lb, b) in itertools.pairwise(series):
        if b.energy_kwh > a.energy_kwh:
            continue
        margin = math.hypot(a.ci95_kwh, b.ci95_kwh)
        text = f"{la} {a.energy_kwh:.4g} kWh >= {lb} {b.energy_kwh:.4g} kWh"
        if math.isfinite(margin) and a.energy_kwh - b.energy_kwh > margin:
            bad.append(text)
        else:
            unsure.append(f"{text}, within the 95% intervals (±{margin:.3g} kWh)")
    return bad, unsure


@dataclass
class Registry:
    results: dict[Key, Measurement] = field(default_factory=dict)
    #: JSON-safe figures computed by tests (e.g. Fig. 3's regions and months).
    figures: dict[str, Any] = field(default_factory=dict)
    #: Session facts for the report: region, PUE, backend, scale, targets.
    session: dict[str, Any] = field(default_factory=dict)

    def add(self, key: Key, m: Measurement) -> None:
        self.results[key] = m

    def get(self, key: Key) -> Measurement | None:
        return self.results.get(key)

    def paper(self, key: Key) -> PaperAccounting | None:
        m = self.results.get(key)
        return None if m is None else PaperAccounting.of(m)

    def require(self, keys: Iterable[Key]) -> list[Key]:
        """The keys that are missing (empty when all are there)."""
        return [k for k in keys if k not in self.results]

    # -- transport (xdist) ------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "results": [
                {"key": asdict(k), "measurement": m.to_dict()} for k, m in self.results.items()
            ],
            "figures": self.figures,
            "session": self.session,
        }

    def merge_json(self, data: dict[str, Any]) -> None:
        for row in data.get("results", ()):
            self.results[Key(**row["key"])] = Measurement.from_dict(row["measurement"])
        self.figures.update(data.get("figures", {}))
        for k, v in data.get("session", {}).items():
            self.session.setdefault(k, v)
