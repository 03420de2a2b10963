"""Shared fixtures. Servers a test needs are started by the tests themselves, on free loopback ports."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MARKETPLACES = SHARED / "data" / "marketplaces"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def catalogue():
    from registry.catalogue import load_catalogue

    return load_catalogue()


@pytest.fixture(scope="session")
def world(catalogue):
    from sandbox.world import build_world

    return build_world(seed=7, n_licences=600, n_listings=240, catalogue=catalogue)


@pytest.fixture(scope="session")
def world_registry(world):
    from registry.index import Registry

    return Registry(world.licences, world.catalogue, version="r-test")


@pytest.fixture
def home(tmp_path):
    """Settings with a fresh data directory, ignoring the environment of the machine."""
    from settings import load_settings

    s = load_settings(home=tmp_path / "home", environ={})
    s.ensure_home()
    return s


@pytest.fixture(scope="session")
def sandbox(world):
    from sandbox.server import SandboxServer

    with SandboxServer(world) as srv:
        yield srv
