"""Carbon accounting: the paper's Eq. 1, grid intensities by region and month, equivalents.

Pure; reads the shipped data in ``pytest_co2/data``. ``from pytest_co2.carbon import
emission`` keeps working: the Eq. 1 names are re-exported from :mod:`.emission`.
"""

from __future__ import annotations

from .emission import *  # noqa: F403  (the Eq. 1 names, as listed in emission.__all__)
from .emission import __all__ as __all__
