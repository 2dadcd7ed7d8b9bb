"""Scraping the server's ``/metrics`` during a run, as a Prometheus server would, so
that what collecting metrics costs the server is part of what is measured."""

from __future__ import annotations

import threading
import urllib.request
from types import TracebackType

SCRAPE_TIMEOUT_S = 5.0


class MetricsScraper:
    """A thread that GETs ``<http_url>/metrics`` every ``interval`` seconds while it is
    entered; a no-op without a URL or with ``interval`` 0."""

    def __init__(self, http_url: str | None, interval: float) -> None:
        self._url = f"{http_url}/metrics" if http_url and interval > 0 else None
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.scrapes = 0
        self.failures = 0
        self.bytes = 0
        """Size of the last scrape's body."""

    def _run(self) -> None:
        assert self._url is not None
        while not self._stop.wait(self._interval):
            try:
                with urllib.request.urlopen(self._url, timeout=SCRAPE_TIMEOUT_S) as answer:
                    self.bytes = len(answer.read())
                self.scrapes += 1
            except OSError:
                self.failures += 1

    def __enter__(self) -> MetricsScraper:
        if self._url is not None:
            self._thread = threading.Thread(target=self._run, name="metrics-scraper", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(SCRAPE_TIMEOUT_S + 1)
