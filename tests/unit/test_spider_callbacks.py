"""Scrapy's check that no generator callback `return`s a value (the value would be lost) is switched off
for speed in crawlers/settings.py (WARN_ON_GENERATOR_RETURN_VALUE): it read and parsed the callback's
source again for almost every response. The same check runs here once over every method of our
spiders instead."""

import inspect

import pytest
from scrapy.utils.misc import is_generator_with_return_value, load_object

from crawlers.run import SPIDERS


def _generator_methods():
    for name, path in sorted(SPIDERS.items()):
        cls = load_object(path)
        for attr, fn in inspect.getmembers(cls, inspect.isfunction):
            if inspect.isgeneratorfunction(fn) and fn.__module__.startswith("crawlers."):
                yield pytest.param(fn, id=f"{name}.{attr}")


@pytest.mark.parametrize("fn", list(_generator_methods()))
def test_no_spider_callback_returns_a_value_from_a_generator(fn):
    assert not is_generator_with_return_value(fn), f"{fn.__qualname__} returns a value from a generator (lost)"


def test_the_check_finds_a_generator_that_returns_a_value_and_covers_the_spiders():
    def bad(self, response):
        yield 1
        return 2

    def good(self, response):
        yield 1
        return

    assert is_generator_with_return_value(bad) and not is_generator_with_return_value(good)
    names = {p.id.split(".", 1)[1] for p in _generator_methods()}
    assert {"parse_catalog", "parse_product", "finish"} <= names  # the test sees the real callbacks
