"""Hostile inputs found by attacking the project: each is refused early with a message naming what is wrong."""
from __future__ import annotations

import pytest

from engine.config import SourceSection
from engine.data import SourceError, get_source


def _quickdraw(tmp_path, **options):
    sections = {"qd": SourceSection(name="qd", kind="quickdraw", options=options)}
    return get_source("qd", sections, tmp_path / "data")


@pytest.mark.parametrize("category", ["../../escaped", "a/b", "..", ".hidden", "a\\b", "bad\x1b[2J"])
def test_a_quickdraw_category_cannot_leave_the_data_dir(tmp_path, category):
    with pytest.raises(SourceError, match="category"):
        _quickdraw(tmp_path, categories=["apple", category], base_url="http://127.0.0.1:9/")
    assert not (tmp_path / "escaped.npy").exists()


@pytest.mark.parametrize("url", ["file:///etc", "ftp://example.org/x", "data:,x", "/local/folder"])
def test_base_url_must_be_http(tmp_path, url):
    with pytest.raises(SourceError, match="base_url"):
        _quickdraw(tmp_path, categories=["apple"], base_url=url)
    with pytest.raises(SourceError, match="base_url"):
        get_source("m", {"m": SourceSection(name="m", kind="mnist", options={"base_url": url})}, tmp_path)


def test_real_quickdraw_category_names_still_pass(tmp_path):
    source = _quickdraw(tmp_path, categories=["The Eiffel Tower", "t-shirt", "baseball bat"])
    assert source.classes() == ("The Eiffel Tower", "t-shirt", "baseball bat")
