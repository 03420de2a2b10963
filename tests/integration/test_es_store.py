"""What only the Elasticsearch/OpenSearch store has, against osmem-server (and a real cluster when
TISWATCH_ES_URL is set): the templates and aliases it creates, time-based observation indices and
their rollover, both clients, two writers on one listing, and errors that name the cluster."""

from __future__ import annotations

import socket
import threading

import pytest
from store_helpers import ES_URL, T0, H, make_store, osmem  # noqa: F401

from listings.es_store import ElasticStore
from listings.model import Listing
from listings.store import SchemaError, SearchQuery, StoreError

pytestmark = pytest.mark.server
CLUSTERS = ["osmem"] + (["es"] if ES_URL else [])


@pytest.fixture(params=CLUSTERS)
def es(request, make_store):  # noqa: F811
    return make_store(request.param)


def L(item="1", price=100.0, **kw):
    return Listing(marketplace="shopee", item_id=item, title="ปลั๊กพ่วง 4 ช่อง", price=price, seller="ร้าน", seller_id="s", **kw)


def test_setup_creates_templates_aliases_and_is_idempotent(es):
    p = es.prefix
    for kind in ("listings", "changes", "verdicts", "evidence", "crawl", "meta"):
        al = es._req("GET", f"/_alias/{p}-{kind}")
        assert list(al) == [f"{p}-{kind}-v2"]
    obs = es.observation_indices()
    assert len(obs) == 1 and obs[0]["write"] and obs[0]["index"].startswith(f"{p}-observations-")
    t = es._req("GET", f"/_index_template/{p}-observations")
    assert t["index_templates"][0]["index_template"]["index_patterns"] == [f"{p}-observations-*"]
    es.setup()  # again: nothing breaks, nothing duplicated
    assert len(es.observation_indices()) == 1
    assert es.detect()["rollover"] in ("client", "ilm", "ism")


def test_rollover_to_a_new_time_based_index_keeps_every_run(es):
    for i in range(6):
        x = L(str(i))
        es.ingest(x, None, T0)
    assert es.rollover() is None  # no condition met
    es.max_docs = 5
    r = es.rollover()
    assert r is not None and "documents" in r["why"] and r["to"].endswith("-000002")
    idx = es.observation_indices()
    assert [i["write"] for i in idx] == [False, True]
    # a run stored in the old index is extended where it lives; a new view goes to the new index
    es.ingest(L("0"), None, T0 + H)
    es.ingest(L("1", price=90.0), None, T0 + H)
    h0, h1 = es.history("shopee:0"), es.history("shopee:1")
    assert [(o["times"], o["last_seen"]) for o in h0["observations"]] == [(2, (T0 + H).isoformat())]
    assert [o["data"]["price"] for o in h1["observations"]] == [100.0, 90.0]
    idx = {i["index"]: i["docs"] for i in es.observation_indices()}
    assert list(idx.values()) == [6, 1]
    assert es.counts()["observations"] == 7
    assert es.touch(["shopee:1"], T0 + 2 * H) == 1 and es.history("shopee:1")["observations"][-1]["times"] == 2


def test_client_rollover_runs_after_bulk_writes(make_store):  # noqa: F811
    st = make_store("osmem", rollover="client", rollover_max_docs=3)
    st._checked_at = -1e9  # as if the last check was long ago
    st.ingest_many([(L(str(i)), None, T0) for i in range(4)])
    assert len(st.observation_indices()) == 2


def test_the_elasticsearch_client_works_too(osmem):  # noqa: F811
    clone = osmem.clone()
    try:
        st = ElasticStore(clone.url, "twes", client="elasticsearch", refresh=True, replicas=0)
        assert st.http.kind == "elasticsearch"
        st.ingest(L(), None, T0)
        st.ingest(L(price=90.0), None, T0 + H)
        assert st.search(SearchQuery(text="ปลั๊ก พ่วง")).total == 1
        assert [c["field"] for c in st.history("shopee:1")["changes"]] == ["price"]
        assert st.get("shopee:1")["price"] == 90.0
        st.close()
    finally:
        clone.close()


def test_two_writers_on_one_listing_lose_nothing(es):
    other = ElasticStore(es.url, es.prefix, refresh=True, replicas=0)
    es.ingest(L(), None, T0)
    errors: list[BaseException] = []

    def work(st, base):
        try:
            for i in range(8):
                st.ingest(L(price=base + i), None, T0 + (i + 1) * H + (base % 2) * H / 2)
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=work, args=(st, b)) for st, b in ((es, 200.0), (other, 301.0))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    h = es.history("shopee:1")
    assert len(h["observations"]) == 17  # every view of both writers is kept, once
    assert es.get("shopee:1")["last_seen"] == max(o["last_seen"] for o in h["observations"])
    other.close()


def test_a_newer_schema_is_refused(es):
    es._req("PUT", f"/{es.prefix}-meta/_doc/schema", {"schema_version": 99}, params={"refresh": "true"})
    with pytest.raises(SchemaError, match="v99"):
        ElasticStore(es.url, es.prefix, replicas=0)


def test_errors_name_the_cluster():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}"):
        ElasticStore(f"http://127.0.0.1:{port}", "tw")
    with pytest.raises(StoreError, match="es_url"):
        ElasticStore("", "tw")


def test_request_timeout_from_settings():
    """[store] es_timeout bounds each request: a cluster that does not answer in time fails with an
    error naming it (here a loopback server that accepts and stays silent)."""
    from settings import load_settings

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    url = f"http://127.0.0.1:{srv.getsockname()[1]}"
    try:
        s = load_settings(environ={}, store={"backend": "elasticsearch", "es_url": url, "es_timeout": 0.5})
        with pytest.raises(StoreError, match=url.replace(".", r"\.") + ".*[Tt]ime"):
            ElasticStore.from_settings(s.store)
    finally:
        srv.close()
