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
DEFER_MARKER = "co2_defer"
DEFER_MARKER_HELP = (
    f"{DEFER_MARKER}(above=G_PER_KWH): skip the test when the live carbon intensity of the "
    "session's zone (--co2-intensity-source) is above G_PER_KWH g CO2e/kWh, naming the best "
    "start in the forecast; without a live value the test runs. above defaults to "
    "--co2-defer-above."
)
STORAGE_DIR = ".co2"  # saved runs (--co2-save=NAME): <rootdir>/.co2/NAME.json
LATEST = "latest"  # --co2-compare's name for the newest saved run
