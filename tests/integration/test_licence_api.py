"""GET /api/v1/licences/check through the review app: answers, errors, OpenAPI, the index built once and
rebuilt when the registry changes, and the access dependency a partner key will plug into."""

from datetime import date

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient

from registry.api import licence_check_access
from registry.store import RegistryStore
from review.app import create_app

HEAD = "เลขที่ใบอนุญาต,เลขที่ มอก.,เครื่องหมายการค้า,แบบ รุ่น ขนาด,สถานะ,วันที่เปลี่ยนสถานะ,วันที่ออกใบอนุญาต\n"


def write(p, rows):
    p.write_text(HEAD + "".join(rows), "utf-8")
    return p


@pytest.fixture
def client(home, tmp_path):
    with RegistryStore(home.registry_db) as rs:
        rs.import_file(write(tmp_path / "a.csv", ['ท5137-2/10,2879-2560,"Eloop / อีลูป","E-29; E-30",ใช้งาน,,15/03/2565\n',
                                                  "น300-1/1,2879-2560,Volto,V-1,เพิกถอน,01/06/2567,01/01/2563\n"]),
                       as_of=date(2024, 7, 1))
    app = create_app(home)
    with TestClient(app) as c:
        yield c


def test_backed_and_not_backed(client):
    r = client.get("/api/v1/licences/check", params={"licence_no": "ท5137-2/10", "brand": "อีลูป", "model": "e30"})
    assert r.status_code == 200
    body = r.json()
    assert body["backed"] is True and body["reasons"] == ["licence_backs:ท5137-2/10"]
    assert body["licence"]["status"] == "active" and body["licence"]["issued"] == "2022-03-15"
    assert body["standard"]["name_th"].startswith("แบตเตอรี่สำรองไฟฟ้า") and body["model_covered"] is True
    r = client.get("/api/v1/licences/check", params={"tis_no": "มอก. ๒๘๗๙-๒๕๖๐", "brand": "Volto"}).json()
    assert r["backed"] is False and r["reasons"] == ["brand_licence_inactive:Volto:revoked"]
    assert r["messages_en"] == ["the licence of Volto is revoked"] and r["messages_th"] == ["ใบอนุญาตของ Volto ถูกเพิกถอนแล้ว"]
    r = client.get("/api/v1/licences/check", params={"licence_no": "น300-1/1", "brand": "Volto", "on": "2024-05-31"}).json()
    assert r["backed"] is True and r["on"] == "2024-05-31"


@pytest.mark.parametrize("params, status, detail", [
    ({}, 422, "give tis_no, licence_no or both"),
    ({"brand": "Eloop"}, 422, "give tis_no, licence_no or both"),
    ({"tis_no": "2879-2560", "on": "yesterday"}, 422, None),
    ({"tis_no": "x" * 101}, 422, None),
])
def test_bad_requests(client, params, status, detail):
    r = client.get("/api/v1/licences/check", params=params)
    assert r.status_code == status
    if detail:
        assert r.json()["detail"] == detail


def test_empty_registry_is_503(home):
    with TestClient(create_app(home)) as c:
        r = c.get("/api/v1/licences/check", params={"tis_no": "2879-2560", "brand": "Eloop"})
    assert r.status_code == 503 and "import" in r.json()["detail"]


def test_index_built_once_and_rebuilt_after_an_import(client, home, tmp_path):
    client.get("/api/v1/licences/check", params={"tis_no": "2879-2560", "brand": "Eloop"})
    cache = client.app.state.registry_cache
    first = cache.registry
    for _ in range(3):
        client.get("/api/v1/licences/check", params={"tis_no": "2879-2560", "brand": "Eloop"})
    assert cache.registry is first
    assert client.get("/api/v1/licences/check", params={"tis_no": "2879-2560", "brand": "Nova"}).json()["backed"] is False
    with RegistryStore(home.registry_db) as rs:
        rs.import_file(write(tmp_path / "b.csv", ["ท9-1/1,2879-2560,Nova,N-1,ใช้งาน,,01/01/2567\n"]))
    r = client.get("/api/v1/licences/check", params={"tis_no": "2879-2560", "brand": "Nova"}).json()
    assert r["backed"] is True and cache.registry is not first and r["registry_version"] == cache.registry.version
    status = client.get("/api/v1/licences/registry").json()
    assert status["licences"] == 3 and status["standards"] == 149 and status["version"] == r["registry_version"]


def test_openapi_documents_the_check(client):
    doc = client.get("/api/openapi.json").json()
    op = doc["paths"]["/api/v1/licences/check"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) >= {"tis_no", "licence_no", "brand", "model", "on"}
    assert all(params[n]["description"] for n in ("tis_no", "licence_no", "brand", "model", "on"))
    assert params["tis_no"]["schema"]["anyOf"][0]["maxLength"] == 100
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    model = doc["components"]["schemas"][ref]
    for f in ("backed", "reasons", "messages_th", "licence", "standard", "brand_covered", "model_covered"):
        assert model["properties"][f].get("description"), f
    assert "422" in op["responses"] and "503" in op["responses"]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["partner key"]["name"] == "X-API-Key" and schemes["partner key (bearer)"]["scheme"] == "bearer"


def test_partner_keys_when_the_settings_require_them(home, tmp_path):
    from datetime import UTC, datetime

    from alerts.service import open_service

    with RegistryStore(home.registry_db) as rs:
        rs.import_file(write(tmp_path / "a.csv", ['ท5137-2/10,2879-2560,Eloop,E-29,ใช้งาน,,15/03/2565\n']))
    svc = open_service(home)
    now = datetime.now(UTC)
    ok = svc.store.add_partner("shop", "Shop platform", now, scopes=("licences:check",)).api_key
    feed_only = svc.store.add_partner("etda", "ETDA", now, scopes=("alerts:read",)).api_key
    svc.close()
    locked = home.model_copy(update={"registry": home.registry.model_copy(update={"check_requires_key": True})})
    params = {"tis_no": "2879-2560", "brand": "Eloop"}
    with TestClient(create_app(locked)) as c:
        assert c.get("/api/v1/licences/check", params=params).status_code == 401
        assert c.get("/api/v1/licences/check", params=params, headers={"X-API-Key": "twk_wrong"}).status_code == 401
        assert c.get("/api/v1/licences/check", params=params, headers={"X-API-Key": feed_only}).status_code == 403
        assert c.get("/api/v1/licences/check", params=params, headers={"X-API-Key": ok}).json()["backed"] is True
        r = c.get("/api/v1/licences/check", params=params, headers={"Authorization": f"Bearer {ok}"})
        assert r.json()["backed"] is True
    with TestClient(create_app(home)) as c:  # open by default
        assert c.get("/api/v1/licences/check", params=params).json()["backed"] is True


def test_the_access_dependency_can_be_replaced(client):
    def nobody() -> None:
        raise HTTPException(401, "closed")

    client.app.dependency_overrides[licence_check_access] = nobody
    params = {"tis_no": "2879-2560", "brand": "Eloop"}
    assert client.get("/api/v1/licences/check", params=params).status_code == 401
    client.app.dependency_overrides.clear()
    assert client.get("/api/v1/licences/check", params=params).status_code == 200
