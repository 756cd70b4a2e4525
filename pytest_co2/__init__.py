"""pytest-co2: energy and carbon as a testable property of machine-learning code.

Importing this package is cheap: torch, monai, pynvml and carbontracker are imported
only by the backends and benchmarks that need them.

PYTEST_DONT_REWRITE: the plugin asserts nothing for pytest to rewrite. Without this marker
an in-process pytest run (pytester) that finds the package already imported without the
rewrite hook (``pytest`` script plus a test that puts the repository on ``sys.path``) warns
"Module already imported so cannot be rewritten" into the inner run's warnings.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
