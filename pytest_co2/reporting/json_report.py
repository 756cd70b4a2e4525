"""The JSON report (versioned schema): a whole run built from the typed model.

Files are written and read back by ``reporting.storage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .model import SCHEMA_VERSION, TestRecord, Totals, all_results
from .session import SessionInfo

if TYPE_CHECKING:
    from .baseline import Comparison


@dataclass
class Report:
    """A whole run: its session facts, test records and a comparison."""

    session: SessionInfo
    tests: list[TestRecord]
    comparison: Comparison | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # blocks added by other plugins

    @property
    def totals(self) -> Totals:
        return Totals.of(all_results(self.tests))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "session": self.session.to_dict(),
            "tests": [t.to_dict() for t in self.tests],
            "totals": self.totals.to_dict(),
        }
        if self.comparison is not None:
            data["comparison"] = self.comparison.to_dict()
        data.update(self.extra)
        return data
