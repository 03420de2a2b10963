import pytest

from settings import ConfigError, load_settings


def test_defaults_and_home(tmp_path):
    s = load_settings(home=tmp_path, environ={})
    assert s.store.backend == "sqlite" and s.listings_db == tmp_path / "listings.sqlite"
    assert set(s.marketplaces) == {"shopee", "lazada", "shop"}


def test_env_overrides_typed():
    s = load_settings(environ={"TISWATCH_CRAWL__CONCURRENCY": "3", "TISWATCH_STORE__BACKEND": "elasticsearch",
                               "TISWATCH_MARKETPLACES__LAZADA__KEYWORDS": '["พัดลม", "ปลั๊กพ่วง"]'})
    assert s.crawl.concurrency == 3 and s.store.backend == "elasticsearch"
    assert s.marketplaces["lazada"].keywords == ["พัดลม", "ปลั๊กพ่วง"]


def test_user_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[crawl]\nconcurrency = 2\n[marketplaces.shopee]\nbase_url = "http://127.0.0.1:9/shopee/"\n')
    s = load_settings(config=p, environ={})
    assert s.crawl.concurrency == 2 and s.marketplaces["shopee"].base_url == "http://127.0.0.1:9/shopee"


@pytest.mark.parametrize("content, key", [
    ("[crawl]\nconcurrency = 0\n", "crawl.concurrency"),
    ("[store]\nbackend = 'mysql'\n", "store.backend"),
    ("[crawl]\nconcurency = 3\n", "crawl.concurency"),
    ('[marketplaces.shop]\nbase_url = "ftp://x"\n', "marketplaces.shop.base_url"),
])
def test_bad_value_names_key_and_file(tmp_path, content, key):
    p = tmp_path / "c.toml"
    p.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_settings(config=p, environ={})
    assert f"`{key}`" in str(e.value) and str(p) in str(e.value)


def test_bad_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[crawl\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config=p, environ={})


def test_env_error_names_variable():
    with pytest.raises(ConfigError, match="TISWATCH_CRAWL__CONCURRENCY"):
        load_settings(environ={"TISWATCH_CRAWL__CONCURRENCY": "many"})
