"""Constants shared by every layer (the lowest module of the package, imports nothing)."""

from __future__ import annotations

J_PER_KWH = 3.6e6  # joules per kilowatt-hour
DEFAULT_PUE = 1.55  # power usage effectiveness: Bouza et al., as used by the paper
DEFAULT_REGION = "EU27"  # the paper's default grid region
