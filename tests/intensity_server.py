"""A local HTTP server on 127.0.0.1 (ephemeral port, a thread) that serves recorded-shape
answers of the intensity providers, counts requests and can be slow or fail on demand."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Body = Any  # a JSON-able value, bytes (sent as is) or a callable returning either


@dataclass
class Route:
    status: int = 200
    body: Body = None
    delay_s: float = 0.0


@dataclass
class IntensityServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, path: str, body: Body, status: int = 200, delay_s: float = 0.0) -> None:
        """Answer GET ``path`` (without the query; a prefix ending in ``*`` matches more)."""
        self.routes[path] = Route(status, body, delay_s)

    def paths(self) -> list[str]:
        return [p for p, _ in self.requests]

    def route(self, path: str) -> Route | None:
        if path in self.routes:
            return self.routes[path]
        for key, r in self.routes.items():
            if key.endswith("*") and path.startswith(key[:-1]):
                return r
        return None


def _handler(server: IntensityServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            server.requests.append((self.path, dict(self.headers.items())))
            route = server.route(self.path.split("?", 1)[0])
            if route is None:
                route = Route(404, {"error": f"no route {self.path}"})
            if route.delay_s:
                time.sleep(route.delay_s)
            body = route.body() if callable(route.body) else route.body
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(route.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (a timeout test)
                pass

    return Handler


def start_server() -> Iterator[IntensityServer]:
    """Start a server; the generator's second step stops it (a fixture body)."""
    state = IntensityServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    httpd.block_on_close = False  # type: ignore[attr-defined]
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# -- recorded shapes ------------------------------------------------------------------------


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def z(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def em_latest(
    zone: str = "DE", g: float = 312, when: str = "2026-12-03T08:00:00.000Z"
) -> dict[str, Any]:
    return {
        "zone": zone,
        "carbonIntensity": g,
        "datetime": when,
        "updatedAt": "2026-12-03T07:45:12.345Z",
        "createdAt": "2026-11-30T08:41:02.001Z",
        "emissionFactorType": "lifecycle",
        "isEstimated": True,
        "estimationMethod": "TIME_SLICER_AVERAGE",
    }


def em_forecast(zone: str, start: dt.datetime, values: list[float]) -> dict[str, Any]:
    return {
        "zone": zone,
        "forecast": [
            {
                "carbonIntensity": g,
                "datetime": (start + dt.timedelta(hours=i)).isoformat().replace("+00:00", ".000Z"),
            }
            for i, g in enumerate(values)
        ],
        "updatedAt": "2026-12-03T07:45:12.345Z",
    }


def uk_period(
    start: dt.datetime, forecast: float, actual: float | None, index: str = "moderate"
) -> dict[str, Any]:
    return {
        "from": z(start),
        "to": z(start + dt.timedelta(minutes=30)),
        "intensity": {"forecast": forecast, "actual": actual, "index": index},
    }


def uk_national(
    start: dt.datetime, forecast: float = 180, actual: float | None = 172
) -> dict[str, Any]:
    return {"data": [uk_period(start, forecast, actual)]}


def uk_fw24h(start: dt.datetime, values: list[float]) -> dict[str, Any]:
    return {
        "data": [
            uk_period(start + dt.timedelta(minutes=30 * i), g, None) for i, g in enumerate(values)
        ]
    }


def uk_regional_period(start: dt.datetime, forecast: float) -> dict[str, Any]:
    return {
        "from": z(start),
        "to": z(start + dt.timedelta(minutes=30)),
        "intensity": {"forecast": forecast, "index": "low"},
        "generationmix": [{"fuel": "wind", "perc": 41.2}, {"fuel": "gas", "perc": 20.3}],
    }


def uk_regional(rid: int, start: dt.datetime, forecast: float = 95) -> dict[str, Any]:
    return {
        "data": [
            {
                "regionid": rid,
                "dnoregion": "UKPN London",
                "shortname": "London",
                "data": [uk_regional_period(start, forecast)],
            }
        ]
    }


def uk_regional_fw24h(rid: int, start: dt.datetime, values: list[float]) -> dict[str, Any]:
    return {
        "data": {
            "regionid": rid,
            "dnoregion": "UKPN London",
            "shortname": "London",
            "data": [
                uk_regional_period(start + dt.timedelta(minutes=30 * i), g)
                for i, g in enumerate(values)
            ],
        }
    }


def later(fn: Callable[[], Any]) -> Callable[[], Any]:
    """A body computed when the request comes (e.g. a forecast relative to now)."""
    return fn
