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
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

ES_URL = os.environ.get("TISWATCH_ES_URL", "")
BACKENDS = ["sqlite", pytest.param("osmem", marks=pytest.mark.server)] + \
    ([pytest.param("es", marks=pytest.mark.server)] if ES_URL else [])
# every backend through each ingestion path: "one" (ingest and delist one by one), "bulk" (the same
# calls held and sent together through ingest_many: Batched)
PATHS = ["sqlite-one", "sqlite-bulk", pytest.param("osmem-one", marks=pytest.mark.server),
         pytest.param("osmem-bulk", marks=pytest.mark.server)] + \
    ([pytest.param("es-one", marks=pytest.mark.server), pytest.param("es-bulk", marks=pytest.mark.server)] if ES_URL else [])
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)
# matching.normalise._RUNS before words v2 (listings/query.py WORDS_VERSION): Latin and digit runs took
# the Thai letters after them; tests store listings with it to check that a store cuts them again
RUNS_BEFORE_WORDS_V2 = re.compile(r"([\u0e00-\u0e7f]+)|([^\W_]+(?:[-.][^\W_]+)*)")
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
        """A fresh store of `backend` ("sqlite", "osmem", "es"), or of "<backend>-one" / "<backend>-bulk"
        (the ingestion path: PATHS)."""
        if backend.endswith(("-one", "-bulk")):
            name, _, path = backend.rpartition("-")
            st = self(name, **kw)
            return Batched(st) if path == "bulk" else st
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


class _Held:
    """The result of a held ingest: looking at it sends what is held."""

    def __init__(self, owner: Batched, i: int):
        self._owner, self._i = owner, i

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner._result(self._i), name)


class Batched:
    """A store whose `ingest` and `delist` calls are held and sent together through `ingest_many`
    (delistings as `Delisting` items) as soon as anything else is asked of the store or a result is
    looked at: the contract tests, written one call at a time, then run through the bulk path with
    batches of several listings, repeated sightings and delistings in between."""

    def __init__(self, store: Any):
        self._store = store
        self._held: list[Any] = []
        self._results: dict[int, Any] = {}
        self._n = 0

    def _send(self) -> None:
        if self._held:
            items, self._held = self._held, []
            first = self._n - len(items)
            for i, r in enumerate(self._store.ingest_many(items)):
                self._results[first + i] = r

    def _result(self, i: int) -> Any:
        self._send()
        return self._results[i]

    def ingest(self, listing: Any, verdict: Any = None, observed_at: datetime | None = None) -> Any:
        self._held.append((listing, verdict, observed_at))
        self._n += 1
        return _Held(self, self._n - 1)

    def delist(self, key: str, at: datetime) -> datetime | None:
        from listings.store import Delisting

        self._held.append(Delisting(key, at))
        self._n += 1
        ch = self._result(self._n - 1).changes
        return datetime.fromisoformat(ch[0][1]) if ch else None

    def __getattr__(self, name: str) -> Any:
        self._send()
        return getattr(self._store, name)


@pytest.fixture
def make_store(tmp_path, request) -> Iterator[Stores]:
    s = Stores(tmp_path, lambda: request.getfixturevalue("osmem"))
    yield s
    s.close()
