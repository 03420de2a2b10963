"""The listing store's pictures (perceptual hashes, re-used photos): part of the store contract, run
against every backend (SQLite; osmem-server; a real cluster when TISWATCH_ES_URL is set)."""

from datetime import timedelta

import pytest
from store_helpers import BACKENDS, T0, make_store, osmem  # noqa: F401

from listings.model import Listing


@pytest.fixture(params=BACKENDS)
def store(request, make_store):  # noqa: F811
    return make_store(request.param)


def put(store, item_id, seller, hashes, at=T0, marketplace="shopee"):
    lst = Listing(marketplace=marketplace, item_id=item_id, title=f"พาวเวอร์แบงค์ {item_id}", seller=seller,
                  seller_id=seller, images=[f"https://cdn.example/{h}.jpg" for h in hashes])
    store.ingest(lst, None, at)
    store.add_images(lst.key, [{"index": i, "url": lst.images[i - 1], "sha256": f"{i:064x}", "phash": h,
                                "width": 800, "height": 800} for i, h in enumerate(hashes, 1)], at)
    return lst.key


def flip(h: str, bits: list[int]) -> str:
    v = int(h, 16)
    for b in bits:
        v ^= 1 << b
    return f"{v:016x}"


H1 = "c3a5f0e1d2b49687"
H2 = "0f1e2d3c4b5a6978"


def test_images_round_trip_and_replace(store):
    k = put(store, "1", "s1", [H1, H2])
    got = store.images_of(k)
    assert [(g["index"], g["phash"], g["url"]) for g in got] == [(1, H1, "https://cdn.example/c3a5f0e1d2b49687.jpg"),
                                                                 (2, H2, "https://cdn.example/0f1e2d3c4b5a6978.jpg")]
    later = T0 + timedelta(days=1)
    store.add_images(k, [{"index": 1, "url": "u", "sha256": f"{1:064x}", "phash": H1}], later)
    got = store.images_of(k)
    assert len(got) == 1 and got[0]["first_seen"] == T0.isoformat() and got[0]["last_seen"] == later.isoformat()


@pytest.mark.parametrize("bits, found", [([], True), ([0], True), ([5, 40], True), ([1, 20, 63], True),
                                         ([1, 2, 20, 63], True), ([0, 1, 2, 3, 4], False)])
def test_near_duplicates_found_within_the_distance(store, bits, found):
    a = put(store, "1", "shop-a", [H1])
    b = put(store, "2", "shop-b", [flip(H1, bits)])
    put(store, "3", "shop-c", [H2])
    same = store.same_images(a, max_distance=4)
    assert ([(s["key"], s["distance"], s["seller_id"], s["image"]) for s in same] == [(b, len(bits), "shop-b", 1)]) is found
    if not found:
        assert same == []


def test_within_three_bits_none_is_missed(store):
    # every 1-3 bit change, in any of the four 16-bit parts, is found through the part indexes
    a = put(store, "0", "s", [H1])
    keys = {}
    for i, bits in enumerate([[0], [17, 33], [15, 31, 47], [48, 49, 50], [63, 62, 61]], 1):
        keys[put(store, str(i), f"s{i}", [flip(H1, bits)])] = len(bits)
    found = {s["key"]: s["distance"] for s in store.same_images(a, max_distance=3)}
    assert found == keys


def test_find_images_by_hash_closest_first_and_limited(store):
    put(store, "1", "a", [flip(H1, [1, 2])])
    put(store, "2", "b", [H1])
    put(store, "3", "c", [flip(H1, [9])])
    hits = store.find_images(H1, max_distance=4)
    assert [(h["item_id"], h["distance"]) for h in hits] == [("2", 0), ("3", 1), ("1", 2)]
    assert [h["item_id"] for h in store.find_images(H1, max_distance=4, limit=1)] == ["2"]
    assert store.find_images(H1, 4, exclude_key="shopee:2")[0]["item_id"] == "3"


def test_bad_hash_is_refused(store):
    with pytest.raises(ValueError):
        store.find_images("not-hex")
    with pytest.raises(ValueError):
        store.find_images("1" * 17)


def test_pictures_survive_dump_and_load_into_any_backend(store, make_store):  # noqa: F811
    # `tiswatch store reindex` / export-import: the re-used photos must not be lost on the way
    src = make_store("sqlite")
    a = put(src, "1", "shop-a", [H1, H2])
    b = put(src, "2", "shop-b", [flip(H1, [3])], at=T0 + timedelta(days=2))
    put(src, "3", "shop-c", [])
    src.add_images(a, [{"index": 1, "url": "u1", "sha256": f"{1:064x}", "phash": H1},
                       {"index": 2, "url": "u2", "sha256": f"{2:064x}", "phash": H2}], T0 + timedelta(days=5))
    records = list(src.dump())
    assert [r["key"] for r in records if r["type"] == "listing_images"] == [a, b]
    store.load(records)
    for k in (a, b):
        assert store.images_of(k) == src.images_of(k)
    assert store.images_of(a)[0]["first_seen"] == T0.isoformat()  # sightings kept as they were
    assert [(s["key"], s["distance"], s["image"]) for s in store.same_images(a)] == [(b, 1, 1)]
    # and back again: a second dump of the target gives the same pictures
    again = [r for r in store.dump() if r["type"] == "listing_images"]
    assert again == [r for r in records if r["type"] == "listing_images"]
