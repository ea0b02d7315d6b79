"""Password-protected agency workbooks (issue: defense budgets usually arrive encrypted): a source declares where the
password comes from (never the YAML); the bytes are decrypted in memory; a missing or wrong password fails that
file alone with a message naming the setting, never the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.process import FileTask, describe, process_file
from flows.reference import read_reference
from samples.protected import write_protected
from schemas.sources import SourceConfigError, load_source, load_sources
from schemas.spec_base import PasswordSpec
from tests.conftest import REFERENCE

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Tr1p-wire!"  # the test's own; no real password is ever committed
VARIABLE = "DCF_TEST_MOD_WORKBOOK_PASSWORD"


@pytest.fixture(scope="module")
def reference():
    return read_reference(REFERENCE)


def _mod(sample_inbox):
    inbox, manifest = sample_inbox
    mod = next(s for s in load_sources(ROOT / "sources") if s.agency == "MOD")
    entry = next(f for f in manifest["files"] if f["agency"] == "MOD" and f["kind"] == "budget")
    return inbox / entry["path"], mod


def _encrypted_copy(src: Path, dest: Path) -> Path:
    return write_protected(src, dest, PASSWORD)


def _process(path: Path, mod, spec, reference):
    digest, size, mtime = describe(path)
    return process_file(FileTask(path, f"MOD/{path.name}", digest, "t", size, mtime, mod, spec), reference)


def test_an_encrypted_workbook_loads_like_the_plain_one(sample_inbox, tmp_path, monkeypatch, reference):
    plain, mod = _mod(sample_inbox)
    spec = mod.spec_for(plain.name)
    locked = _encrypted_copy(plain, tmp_path / "mod" / plain.name)
    assert locked.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"  # an OLE2 container, not a zip: really encrypted
    monkeypatch.setenv(VARIABLE, PASSWORD)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    batch = _process(locked, mod, spec.model_copy(update={"password": PasswordSpec(env=VARIABLE)}), reference)
    expected = _process(plain, mod, spec, reference)
    assert batch.status == "loaded" and batch.counts == expected.counts
    assert batch.rows["amount_usd"].sum() == pytest.approx(expected.rows["amount_usd"].sum())
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no decrypted copy written beside it


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, f"the environment variable {VARIABLE} is not set"),
        ("not-the-password", f"the password from the environment variable {VARIABLE} does not open this workbook"),
    ],
)
def test_a_missing_or_wrong_password_fails_the_file_naming_the_setting(
    sample_inbox, tmp_path, monkeypatch, reference, value, says
):
    plain, mod = _mod(sample_inbox)
    spec = mod.spec_for(plain.name).model_copy(update={"password": PasswordSpec(env=VARIABLE)})
    locked = _encrypted_copy(plain, tmp_path / "mod" / plain.name)
    if value is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, value)
    batch = _process(locked, mod, spec, reference)
    assert batch.status == "failed" and says in batch.message
    assert PASSWORD not in batch.message and (value is None or value not in batch.message)


def test_without_a_declared_password_the_message_says_how_to_declare_one(sample_inbox, tmp_path, reference):
    plain, mod = _mod(sample_inbox)
    locked = _encrypted_copy(plain, tmp_path / "mod" / plain.name)
    batch = _process(locked, mod, mod.spec_for(plain.name), reference)
    assert batch.status == "failed" and "password: {env: VARIABLE}" in batch.message


def test_a_password_written_into_the_yaml_is_refused_without_echoing_it(tmp_path):
    text = (ROOT / "sources" / "mod.yaml").read_text(encoding="utf-8")
    assert "    sheet: Budget\n" in text
    bad = tmp_path / "mod.yaml"
    bad.write_text(text.replace("    sheet: Budget\n", "    sheet: Budget\n    password: hunter2\n", 1))
    with pytest.raises(SourceConfigError) as caught:
        load_source(bad)
    assert "a password never sits in the YAML" in str(caught.value) and "hunter2" not in str(caught.value)
    good = tmp_path / "good.yaml"
    good.write_text(text.replace("    sheet: Budget\n", "    sheet: Budget\n    password: {env: MOD_PW}\n", 1))
    spec = next(f for f in load_source(good).files if getattr(f, "sheet", None) == "Budget")
    assert spec.password == PasswordSpec(env="MOD_PW")
