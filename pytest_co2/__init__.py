"""pytest-co2: energy and carbon as a testable property of machine-learning code.

Importing this package is cheap: torch, monai, pynvml and carbontracker are imported
only by the backends and benchmarks that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
