"""Listing store backends for tests: SQLite in a temporary folder, osmem-server (an in-memory
OpenSearch-compatible server started on a free loopback port; each test gets its own copy-on-write
clone), and a real Elasticsearch/OpenSearch cluster when TISWATCH_ES_URL is set (each test gets its
own index prefix, deleted afterwards).

    from store_helpers import BACKENDS, make_store, osmem  # noqa: F401  (fixtures)

    @pytest.fixture(params=BACKENDS)
    def store(request, tmp_path, osmem): ...
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

ES_URL = os.environ.get("TISWATCH_ES_URL", "")
BACKENDS = ["sqlite", pytest.param("osmem", marks=pytest.mark.server)] + \
    ([pytest.param("es", marks=pytest.mark.server)] if ES_URL else [])
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


@pytest.fixture(scope="session")
def osmem() -> Iterator[Any]:
    """One osmem-server for the session (per xdist worker); stopped at the end."""
    from osmem_server import OsmemServer

    srv = OsmemServer.start(addr="127.0.0.1:0", japanese=False)
    yield srv
    srv.close()


class Stores:
    """Makes fresh stores of a backend and closes (and, on a real cluster, deletes) them afterwards."""

    def __init__(self, tmp_path: Any, osmem_factory: Any):
        self.tmp_path = tmp_path
        self._osmem = osmem_factory
        self._open: list[Any] = []
        self._clones: list[Any] = []
        self._n = 0

    def __call__(self, backend: str, **kw: Any) -> Any:
        self._n += 1
        if backend == "sqlite":
            from listings.sqlite_store import SqliteStore

            st: Any = SqliteStore(self.tmp_path / f"listings-{self._n}.sqlite")
        elif backend == "osmem":
            from listings.es_store import ElasticStore

            clone = self._osmem().clone()
            self._clones.append(clone)
            st = ElasticStore(clone.url, kw.pop("prefix", "tw"), refresh=kw.pop("refresh", True), replicas=0, **kw)
        elif backend == "es":
            from listings.es_store import ElasticStore

            st = ElasticStore(ES_URL, f"twtest-{uuid.uuid4().hex[:10]}", refresh=kw.pop("refresh", True), replicas=0, **kw)
            st._drop_on_close = True
        else:
            raise ValueError(backend)
        self._open.append(st)
        return st

    def close(self) -> None:
        for st in self._open:
            try:
                if getattr(st, "_drop_on_close", False):
                    st.drop()
                st.close()
            except Exception:
                pass
        for c in self._clones:
            c.close()


@pytest.fixture
def make_store(tmp_path, request) -> Iterator[Stores]:
    s = Stores(tmp_path, lambda: request.getfixturevalue("osmem"))
    yield s
    s.close()
