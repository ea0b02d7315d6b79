"""The built reference is cached (issue 15 point 4), keyed on the content of every file it is built from: a cached
reference is the reference built from the folder as it is now, and a steward's edit shows on the next read, even one
that keeps the file's size and modification time."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from flows import reference as R
from flows.reference import ReferenceError_, read_reference

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path) -> Path:
    copy = tmp_path / "reference"
    shutil.copytree(ROOT / "reference", copy)
    return copy


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def builds(monkeypatch) -> list[int]:
    """One entry per reference actually built (not taken from the cache)."""
    counted: list[int] = []
    real = R._build
    monkeypatch.setattr(R, "_build", lambda *a: counted.append(1) or real(*a))
    return counted


def _same(a: R.Reference, b: R.Reference) -> None:
    for name in a.__dataclass_fields__:
        if name == "built_country_dimension":  # built only with the cache: see the last test
            continue
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y)
        elif name == "fx_chain":
            assert [(type(p), p.name) for p in x.providers] == [(type(p), p.name) for p in y.providers]
            for p, q in zip(x.providers, y.providers, strict=True):
                pd.testing.assert_frame_equal(p.table, q.table)
        else:
            assert x == y, name


def test_a_cached_reference_is_the_reference_built(folder, cache, builds):
    built = read_reference(folder, cache=None)
    first = read_reference(folder, cache=cache)
    again = read_reference(folder, cache=cache)
    assert len(builds) == 2  # without the cache, then once into it; the third came from it
    _same(built, first)
    _same(built, again)
    assert again is not first  # each read unpickles its own copy: a caller changing a frame changes no other
    assert len(list(cache.glob("*.pickle"))) == 1
    assert (cache.stat().st_mode & 0o777) == 0o700


def test_an_edit_keeping_size_and_mtime_takes_effect_at_once(folder, cache, builds):
    before = read_reference(folder, cache=cache)
    path = folder / "category_mappings.csv"
    text = path.read_text(encoding="utf-8")
    st = path.stat()
    edited = text.replace(text.splitlines()[1], text.splitlines()[1][:-4] + "XXXX", 1)  # same length
    assert len(edited) == len(text) and edited != text
    path.write_text(edited, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the same size and mtime: only the content tells
    after = read_reference(folder, cache=cache)
    assert len(builds) == 2
    assert after.category_mappings.iloc[0].tolist() != before.category_mappings.iloc[0].tolist()
    _same(after, read_reference(folder, cache=None))
    path.write_text(text, encoding="utf-8")  # and back: the first entry serves again
    _same(read_reference(folder, cache=cache), before)
    assert len(builds) == 3  # the uncached read built once more; the restored content came from the cache


@pytest.mark.parametrize("name", ["countries.csv", "normalization.yaml"])
def test_every_file_read_is_part_of_the_key(folder, cache, builds, name):
    read_reference(folder, cache=cache)
    path = folder / name
    path.write_bytes(path.read_bytes() + (b"\n" if name.endswith(".yaml") else b"ZZZ,Europe,,false,false,,,Zedland\n"))
    read_reference(folder, cache=cache)
    assert len(builds) == 2


def test_the_world_bank_file_is_part_of_the_key(folder, cache, builds, monkeypatch):
    wb = folder / "wdi.csv"
    header = '"Data Source","WDI",\n\n"Last Updated Date","2025-07-01",\n\n'
    wb.write_text(header + '"Country Name","Country Code","2020","2021",\n"Pakistan","PAK","160.0","170.0",\n')
    monkeypatch.setenv("DCF_WORLDBANK_FX", str(wb))

    def worldbank(reference: R.Reference) -> float:
        (provider,) = [p for p in reference.fx_chain.providers if p.name == "worldbank"]
        return float(provider.table["units_per_usd"].max())

    assert worldbank(read_reference(folder, cache=cache)) == pytest.approx(170.0)
    wb.write_text(wb.read_text().replace("170.0", "180.0"))
    assert worldbank(read_reference(folder, cache=cache)) == pytest.approx(180.0)
    assert len(builds) == 2


def test_a_broken_table_fails_as_without_the_cache(folder, cache):
    (folder / "stage_labels.csv").write_text("label\nallocation\n", encoding="utf-8")
    with pytest.raises(ReferenceError_) as cached:
        read_reference(folder, cache=cache)
    with pytest.raises(ReferenceError_) as plain:
        read_reference(folder, cache=None)
    assert str(cached.value) == str(plain.value) and "missing column(s) stage" in str(cached.value)
    (folder / "stage_labels.csv").unlink()
    with pytest.raises(ReferenceError_, match="cannot read reference table"):
        read_reference(folder, cache=cache)
    assert not list(cache.glob("*.pickle"))


def test_a_damaged_or_foreign_entry_is_built_again(folder, cache, builds):
    read_reference(folder, cache=cache)
    (entry,) = cache.glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    _same(read_reference(folder, cache=cache), read_reference(folder, cache=None))
    assert len(builds) == 3  # rebuilt (and stored again), then the uncached one
    entry.chmod(0o666)  # writable by others: never unpickled
    read_reference(folder, cache=cache)
    assert len(builds) == 4


def test_the_cache_can_be_turned_off_and_an_unwritable_one_is_only_slower(folder, tmp_path, builds, monkeypatch):
    monkeypatch.setenv(R.CACHE_ENV, "off")
    assert R.reference_cache_dir() is None
    read_reference(folder)
    monkeypatch.setenv(R.CACHE_ENV, str(tmp_path / "c"))
    assert R.reference_cache_dir() == tmp_path / "c"
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    read_reference(folder, cache=blocked / "cache")  # cannot be created: built, nothing stored, no error
    assert len(builds) == 2


def test_the_country_dimension_comes_built_and_follows_the_countries_table(folder, cache):
    from dataclasses import replace

    from transforms.reference import country_dimension

    plain = read_reference(folder, cache=None)
    cached = read_reference(folder, cache=cache)
    assert plain.built_country_dimension is None and cached.built_country_dimension is not None
    pd.testing.assert_frame_equal(country_dimension(cached), country_dimension(plain))
    mine = country_dimension(cached)
    mine.loc[0, "name_en"] = "changed by a caller"  # a copy each time
    pd.testing.assert_frame_equal(country_dimension(cached), country_dimension(plain))
    edited = cached.countries.copy()
    edited.loc[edited["iso3"] == "FRA", "region"] = "Somewhere"
    other = replace(cached, countries=edited)  # carries the built dimension of the old table: not used
    assert other.built_country_dimension is cached.built_country_dimension
    dim = country_dimension(other)
    assert dim.loc[dim["iso3"] == "FRA", "region"].tolist() == ["Somewhere"]
    pd.testing.assert_frame_equal(dim, country_dimension(replace(plain, countries=edited)))
