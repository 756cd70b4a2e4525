"""The measuring API under its first name: ``from pytest_co2.meter import Meter, Measurement``.

The code lives in :mod:`pytest_co2.measure`; this module keeps user imports working.
"""

from __future__ import annotations

from .constants import J_PER_KWH
from .measure.assemble import GROUP_FACTOR, group_windows
from .measure.idle import measure_idle_w
from .measure.meter import Meter
from .measure.records import DeviceEnergy, Measurement, Projection
from .measure.stats import Stats, t975
from .measure.window import Window

__all__ = [
    "GROUP_FACTOR",
    "J_PER_KWH",
    "DeviceEnergy",
    "Measurement",
    "Meter",
    "Projection",
    "Stats",
    "Window",
    "group_windows",
    "measure_idle_w",
    "t975",
]
