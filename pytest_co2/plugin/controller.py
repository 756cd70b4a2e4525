"""The pytest-xdist controller's hooks (registered only where xdist is active): what the
controller hands down to each worker, and what each worker opened, collected back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import Co2Session


class ControllerHooks:
    """Controller-side pytest-xdist hooks (see the module)."""

    def __init__(self, state: Co2Session) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        from .live_intensity import WORKER_KEY, for_workers
        from .provider import WORKER_FACTS_KEY

        node.workerinput[WORKER_FACTS_KEY] = self.state.provider.facts_for_workers().to_dict()
        live = for_workers(self.state.live)
        if live is not None:
            node.workerinput[WORKER_KEY] = live

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        from ..reporting.session_parts import WorkerFacts
        from .provider import WORKER_FACTS_KEY

        facts = getattr(node, "workeroutput", {}).get(WORKER_FACTS_KEY)
        if facts:
            worker = str(getattr(node, "gateway", None) and node.gateway.id)
            self.state.provider.worker_facts[worker] = WorkerFacts.from_dict(facts)
