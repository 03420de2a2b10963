"""HTTP to an Elasticsearch or OpenSearch cluster, through either official client's transport.

Which client works best (measured against osmem-server, an OpenSearch 3 look-alike, and by reading
both clients):
- **opensearch-py** (default, `es_client = "auto"` or `"opensearch"`): talks plain
  `application/json`, which OpenSearch 2/3 and Elasticsearch 8/9 all accept, and does no product
  check. It works against both kinds of cluster unchanged.
- **elasticsearch-py 9** (`es_client = "elasticsearch"`): its API methods send
  `application/vnd.elasticsearch+json; compatible-with=9`, which OpenSearch (and osmem) answer with
  HTTP 406, and they refuse any server that does not send `X-Elastic-Product: Elasticsearch`. Used
  through its transport (`elastic_transport`) with explicit `application/json` headers, both
  problems go away, and it keeps what an Elastic Cloud user may want from it (Cloud ID, API keys).

The store only needs `request(method, path, body)`: the same small surface on both.
"""

from __future__ import annotations

import json
from typing import Any

from listings.store import StoreError

JSON = {"accept": "application/json", "content-type": "application/json"}
NDJSON = {"accept": "application/json", "content-type": "application/x-ndjson"}


class HttpError(StoreError):
    def __init__(self, status: int, method: str, url: str, body: Any):
        self.status, self.body = status, body
        err = body.get("error") if isinstance(body, dict) else body
        reason = f"{err.get('type')}: {err.get('reason')}" if isinstance(err, dict) else str(err)[:300]
        super().__init__(f"{method} {url}: HTTP {status}: {reason}")


class EsClient:
    """One cluster. `client`: "auto"/"opensearch" (opensearch-py) or "elasticsearch" (elasticsearch-py)."""

    def __init__(self, url: str, client: str = "auto", username: str = "", password: str = "", api_key: str = "",
                 ca_certs: str = "", verify_certs: bool = True, timeout: float = 30.0):
        if not url:
            raise StoreError("no Elasticsearch/OpenSearch URL: set [store] es_url (or TISWATCH_STORE__ES_URL)")
        self.url = url.rstrip("/")
        self.kind = "elasticsearch" if client == "elasticsearch" else "opensearch"
        tls: dict[str, Any] = {"verify_certs": verify_certs}
        if ca_certs:
            tls["ca_certs"] = ca_certs
        if self.kind == "elasticsearch":
            from elasticsearch import Elasticsearch

            kw: dict[str, Any] = {"request_timeout": timeout, **tls}
            if api_key:
                kw["api_key"] = api_key
            elif username:
                kw["basic_auth"] = (username, password)
            self._es = Elasticsearch(self.url, **kw)
        else:
            from opensearchpy import OpenSearch

            kw = {"timeout": timeout, "http_compress": False, **tls}
            if api_key:
                kw["headers"] = {"authorization": f"ApiKey {api_key}"}
            elif username:
                kw["http_auth"] = (username, password)
            self._os = OpenSearch(hosts=[self.url], **kw)

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                ok: tuple[int, ...] = ()) -> Any:
        """The decoded answer. An HTTP error raises HttpError (naming the URL) unless its status is in
        `ok`, in which case the error body is returned. A bulk body is a list of dicts (NDJSON)."""
        nd = isinstance(body, list)
        data: Any = body
        if nd:
            data = ("\n".join(json.dumps(x, ensure_ascii=False) for x in body) + "\n").encode()
        q = "&".join(f"{k}={_q(v)}" for k, v in (params or {}).items() if v is not None)
        target = path + ("?" + q if q else "")
        status, out = self._perform(method, target, data, NDJSON if nd else JSON, ok)
        if status >= 300 and status not in ok:
            raise HttpError(status, method, self.url + target, out)
        return out

    def _perform(self, method: str, target: str, data: Any, headers: dict[str, str], ok: tuple[int, ...]) -> tuple[int, Any]:
        try:
            if self.kind == "elasticsearch":  # elastic_transport returns error statuses as responses
                if isinstance(data, dict):
                    data = json.dumps(data, ensure_ascii=False).encode()
                resp = self._es.transport.perform_request(method, target, headers=headers, body=data)
                return resp.meta.status, resp.body
            from opensearchpy.exceptions import TransportError

            try:
                if isinstance(data, bytes):
                    data = data.decode()
                # statuses the caller expects are not logged as failures (ignore=); their body is returned
                out = self._os.transport.perform_request(method, target, body=data, headers=headers, ignore=ok)
                return 200, out
            except TransportError as e:
                if isinstance(e.status_code, int):
                    return e.status_code, e.info if e.info else {"error": str(e.error)}
                raise
        except StoreError:
            raise
        except Exception as e:  # connection refused, TLS, timeouts: name the cluster
            raise StoreError(f"{self.url}: {type(e).__name__}: {e}") from None

    def close(self) -> None:
        try:
            (self._es if self.kind == "elasticsearch" else self._os).close()
        except Exception:
            pass


def _q(v: Any) -> str:
    from urllib.parse import quote

    if isinstance(v, bool):
        return "true" if v else "false"
    return quote(str(v), safe=",*")
