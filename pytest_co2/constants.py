"""Constants shared by every layer (the lowest module of the package, imports nothing)."""

from __future__ import annotations

J_PER_KWH = 3.6e6  # joules per kilowatt-hour
DEFAULT_PUE = 1.55  # power usage effectiveness: Bouza et al., as used by the paper
DEFAULT_REGION = "EU27"  # the paper's default grid region
DEFAULT_PRECISION = 0.05  # steps(): the 95% interval of the per-unit energy within +-5%
DEFAULT_MAX_TIME_S = 10.0  # steps(): at most this many measured seconds to get there
MARKER = "co2_budget"
MARKER_HELP = (
    f"{MARKER}(kg=None, kwh=None, extrapolate=None, unit=None, region=None): fail the test when "
    "the projected emissions (kg CO2e) or energy (kWh) of its measurements exceed the budget. "
    "extrapolate/unit set the projection target for this test; region its grid region."
)
STORAGE_DIR = ".co2"  # saved runs (--co2-save=NAME): <rootdir>/.co2/NAME.json
LATEST = "latest"  # --co2-compare's name for the newest saved run
