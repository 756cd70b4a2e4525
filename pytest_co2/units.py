"""Unit constants shared by every layer (the lowest module of the package)."""

from __future__ import annotations

J_PER_KWH = 3.6e6  # joules per kilowatt-hour
