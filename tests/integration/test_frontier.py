"""The durable frontier: a run survives its process (a new Frontier on the same file is what a crawl
after a kill -9 sees), requests come back in order, handled ones never again."""

import pytest
import scrapy
from scrapy.http import FormRequest, JsonRequest
from scrapy.utils.request import RequestFingerprinter, request_from_dict

from crawlers.frontier import Frontier, Tracker, request_dict


class S(scrapy.Spider):
    name = "s"

    def parse_page(self, response, card=None):
        pass


def tracker(path, spider, fresh=False):
    f = Frontier(path)
    f.open_run(fresh=fresh)
    return Tracker(f, RequestFingerprinter().fingerprint, lambda r: request_dict(r, spider))


class Busy(scrapy.Spider):
    """A spider like ours: properties that do work (Scrapy's to_dict evaluates every one, per request)."""

    name = "busy"
    reads = 0

    @property
    def ctx(self):
        Busy.reads += 1
        return None

    def parse_page(self, response):
        pass

    def on_error(self, failure):
        pass


class Aliased(Busy):
    alias = Busy.parse_page  # the same function under a second name


def elsewhere(response):
    pass


@pytest.mark.parametrize("make", [
    lambda sp: scrapy.Request("https://m.example/p?q=1", callback=sp.parse_page, errback=sp.on_error,
                              cb_kwargs={"card": {"item_id": "1"}}, meta={"ref": "1", "x": [1, 2]},
                              headers={"Accept": "application/json"}, priority=-10, dont_filter=True),
    lambda sp: scrapy.Request("https://m.example/a"),  # no callback: parse
    lambda sp: scrapy.Request("https://m.example/b", callback=sp.alias),  # an Aliased spider
    lambda sp: JsonRequest("https://m.example/api", data={"a": 1}, callback=sp.parse_page),
    lambda sp: FormRequest("https://m.example/f", formdata={"q": "x"}, callback=sp.parse_page, errback=sp.on_error),
], ids=["full", "no_callback", "alias", "json", "form"])
def test_request_dict_is_scrapys_to_dict_and_comes_back(make, request):
    sp = Aliased() if "alias" in request.node.callspec.id else Busy()
    req = make(sp)
    Busy.reads = 0
    fast = request_dict(req, sp)
    assert Busy.reads == 0  # the spider's properties were not evaluated
    expected = req.to_dict(spider=sp)
    if req.url.endswith("/b"):  # two names for one method: either names it (Scrapy takes the first in order)
        assert (fast["callback"], expected["callback"]) == ("parse_page", "alias")
        fast = {**fast, "callback": "alias"}
    assert fast == expected
    back = request_from_dict(fast, spider=sp)
    assert (type(back), back.url, back.body, back.meta, back.cb_kwargs, back.priority, back.callback, back.errback) == \
        (type(req), req.url, req.body, req.meta, req.cb_kwargs, req.priority, req.callback, req.errback)


def test_request_dict_of_a_callback_that_is_not_the_spiders_fails_as_scrapys():
    sp = Busy()
    req = scrapy.Request("https://m.example/p", callback=elsewhere)
    with pytest.raises(ValueError):
        req.to_dict(spider=sp)
    with pytest.raises(ValueError):
        request_dict(req, sp)  # the tracker then keeps the request by key only


def R(spider, url, **kw):
    return scrapy.Request(url, callback=spider.parse_page, **kw)


def test_a_run_survives_its_process_and_finishes_once(tmp_path):
    sp = S()
    path = tmp_path / "frontier.sqlite"
    t = tracker(path, sp)
    assert not t.frontier.run.resumed
    search, a, b, c = (R(sp, f"https://m.example/{x}", cb_kwargs={"card": {"t": x}}) for x in ("search", "a", "b", "c"))
    for r in (search, a, b, c):
        assert t.record(r)
    ks = t.key(search)
    # the search page yielded a, b, c and no item: done; a's item is still in the pipelines
    t.output_done(ks, search.url)
    item = {"title": "a"}
    t.item_started(t.key(a), item)
    t.output_done(t.key(a), a.url)
    assert t.frontier.counts() == {"done": 1, "pending": 3}
    t.item_finished(item)                       # stored: a is done
    t.mark(t.key(b), b.url, "failed")
    assert t.frontier.counts() == {"done": 2, "failed": 1, "pending": 1}
    started = t.frontier.run.started
    t.frontier.close()                          # ... the process dies here (nothing else is written)

    t2 = tracker(path, sp)
    assert t2.frontier.run.resumed and t2.frontier.run.started == started
    pending = [request_from_dict(d, spider=sp) for d in t2.frontier.pending()]
    assert [(r.url, r.cb_kwargs, r.callback.__name__) for r in pending] == [(c.url, {"card": {"t": "c"}}, "parse_page")]
    assert not t2.record(R(sp, a.url)) and not t2.record(R(sp, b.url)) and not t2.record(R(sp, search.url))
    assert t2.record(R(sp, c.url)) and t2.record(R(sp, "https://m.example/new"))
    t2.frontier.finish_run("finished")
    t2.frontier.close()

    t3 = tracker(path, sp)
    assert not t3.frontier.run.resumed and list(t3.frontier.pending()) == []
    assert t3.record(R(sp, a.url))              # a new run fetches everything again


def test_item_finishing_before_the_output_ends(tmp_path):
    sp = S()
    t = tracker(tmp_path / "f.sqlite", sp)
    r = R(sp, "https://m.example/p")
    t.record(r)
    k = t.key(r)
    items = [{"n": 1}, {"n": 2}]
    for it in items:
        t.item_started(k, it)
        t.item_started(k, it)                   # counted once however often it passes
    t.item_finished(items[0])
    t.item_finished(items[1])                   # both stored, but the callback has not finished yet
    t.flush()
    assert t.frontier.counts() == {"pending": 1}
    t.output_done(k, r.url)
    assert t.frontier.counts() == {"done": 1}


def test_requests_reach_the_disk_before_their_parent_is_done(tmp_path):
    sp = S()
    t = tracker(tmp_path / "f.sqlite", sp)
    parent = R(sp, "https://m.example/search")
    t.record(parent)
    t.flush()
    kids = [R(sp, f"https://m.example/p{i}") for i in range(3)]
    for k in kids:
        t.record(k)                             # recorded in memory, written in one transaction ...
    assert t.frontier.counts() == {"pending": 1}
    t.output_done(t.key(parent), parent.url)   # ... before the parent is marked done
    assert t.frontier.counts() == {"done": 1, "pending": 3}


def test_fresh_abandons_the_open_run_and_render_requests_have_their_own_key(tmp_path):
    sp = S()
    path = tmp_path / "f.sqlite"
    t = tracker(path, sp)
    r = R(sp, "https://m.example/p")
    t.record(r)
    render = R(sp, r.url, meta={"frontier_key": t.key(r) + ":render"}, dont_filter=True)
    assert t.key(render) != t.key(r) and t.record(render)
    t.flush()
    t.frontier.close()
    t2 = tracker(path, sp, fresh=True)
    assert not t2.frontier.run.resumed and list(t2.frontier.pending()) == []


def test_a_request_that_cannot_be_kept_is_recorded_by_key(tmp_path):
    sp = S()
    t = tracker(tmp_path / "f.sqlite", sp)
    r = R(sp, "https://m.example/p", meta={"handle": lambda: None})  # not picklable
    assert t.record(r) and t.unpicklable == 1
    assert list(t.frontier.pending()) == [] and t.frontier.counts() == {"pending": 1}


def test_held_done_marks_reach_the_disk_at_release_after_the_requests(tmp_path):
    """While the listing store batches its writes (crawlers/batch.py), a page is done on disk only at
    release(), after the requests it yielded: a kill before that fetches it again on resume."""
    sp = S()
    t = tracker(tmp_path / "f.sqlite", sp)
    parent = R(sp, "https://m.example/search")
    t.record(parent)
    t.flush()
    t.hold()
    kids = [R(sp, f"https://m.example/p{i}") for i in range(3)]
    for k in kids:
        t.record(k)
    t.output_done(t.key(parent), parent.url)
    assert t.frontier.counts() == {"pending": 1}       # a kill now: the search page comes back
    assert not t.record(parent)                         # this run itself never fetches it again
    t.release()
    assert t.frontier.counts() == {"done": 1, "pending": 3}
    t.output_done(t.key(kids[0]), kids[0].url)
    t.release(stop=True)
    assert t.frontier.counts() == {"done": 2, "pending": 2}
    t.output_done(t.key(kids[1]), kids[1].url)          # no longer held: at once
    assert t.frontier.counts() == {"done": 3, "pending": 1}


def test_a_commit_in_another_process_releases_only_the_marks_cut_before_it(tmp_path):
    """The store worker (crawlers/storeworker.py): the marks held when a commit is asked are written
    when it answers; pages done meanwhile wait for the next commit; a failed commit puts its marks
    back; marks of writes that were lost are forgotten, so those pages come back on resume."""
    sp = S()
    t = tracker(tmp_path / "f.sqlite", sp)
    t.hold()
    pages = [R(sp, f"https://m.example/p{i}") for i in range(4)]
    for p in pages:
        t.record(p)
    t.flush()
    t.output_done(t.key(pages[0]), pages[0].url)
    cut = t.take_held()                                  # commit 1 asked
    t.output_done(t.key(pages[1]), pages[1].url)         # done while the worker commits
    assert t.frontier.counts() == {"pending": 4}
    t.release_marks(cut)                                 # commit 1 answered
    assert t.frontier.counts() == {"done": 1, "pending": 3}
    cut2 = t.take_held()                                 # commit 2 asked ...
    t.put_back(cut2)                                     # ... and failed
    t.output_done(t.key(pages[2]), pages[2].url)
    t.release_marks(t.take_held())                       # commit 3 takes both
    assert t.frontier.counts() == {"done": 3, "pending": 1}
    t.output_done(t.key(pages[3]), pages[3].url)
    t.forget_held()                                      # the worker died with its writes
    t.release(stop=True)
    assert t.frontier.counts() == {"done": 3, "pending": 1}
