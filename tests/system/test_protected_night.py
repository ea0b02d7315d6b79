"""A protected sample workbook through a whole night, through the CLI as an operator runs it: the MOD source
declares that its budget workbooks are encrypted and names the environment variable holding the password. Without
the password, or with a wrong one, MOD's budget files fail alone (one line naming the variable, never the password,
no traceback) while every other file loads; with it, the encrypted workbook loads exactly as the plain one did."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from samples.protected import write_protected

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Dr1ll-Sergeant#"  # this test's own; no password is shipped
VARIABLE = "DCF_TEST_MOD_BUDGET_PASSWORD"


def _night(inbox: Path, sources: Path, wh: Path, password: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if password is not None:
        env[VARIABLE] = password
    args = ["run", "--inbox", str(inbox), "--sources", str(sources), "--warehouse", str(wh)]
    return subprocess.run(
        [sys.executable, "-m", "dcf.cli", *args], capture_output=True, text=True, timeout=900, env=env, cwd=ROOT
    )


def _files(wh: Path) -> dict[str, tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = con.execute(
            "SELECT file_key, status, rows_read, rows_loaded, rows_quarantined, rows_skipped FROM audit_source_file "
            "WHERE is_current"
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_a_protected_workbook_needs_its_password_and_harms_nothing_else(inbox_copy, sample_warehouse, tmp_path):
    inbox, manifest = inbox_copy
    entry = next(f for f in manifest["files"] if f["agency"] == "MOD" and f["kind"] == "budget")
    locked = write_protected(inbox / entry["path"], inbox / entry["path"], PASSWORD)
    assert locked.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"  # an OLE2 container now, not a zip

    sources = tmp_path / "sources"
    shutil.copytree(ROOT / "sources", sources)
    mod = yaml.safe_load((sources / "mod.yaml").read_text(encoding="utf-8"))
    budget = next(f for f in mod["files"] if f["kind"] == "budget")
    budget["password"] = {"env": VARIABLE}
    (sources / "mod.yaml").write_text(yaml.safe_dump(mod, allow_unicode=True, sort_keys=False), encoding="utf-8")
    plain = _files(sample_warehouse)
    mod_budgets = {k for k in plain if k.startswith("MOD/MOD_budget_")}
    assert len(mod_budgets) == 2  # the spec covers both years; only the encrypted one asks for the password

    locked_key = f"MOD/{locked.name}"
    cases = (
        (None, f"the environment variable {VARIABLE} is not set", {locked_key}),  # the plain year still loads
        ("not-the-password", f"the password from the environment variable {VARIABLE} does not open", {locked_key}),
    )
    for i, (password, said, expected_failed) in enumerate(cases):
        wh = tmp_path / f"night-{i}.duckdb"
        night = _night(inbox, sources, wh, password)
        shown = night.stdout + night.stderr
        assert night.returncode == 4, shown[-3000:]  # some files failed; the night published the rest
        assert "Traceback" not in shown and PASSWORD not in shown and "not-the-password" not in shown
        assert f"failed {locked_key}: {locked.name}: {said}" in night.stdout, shown[-3000:]
        files = _files(wh)
        assert {k for k, v in files.items() if v[0] == "failed"} == expected_failed
        assert {k: v for k, v in files.items() if k not in expected_failed} == {
            k: v for k, v in plain.items() if k not in expected_failed
        }  # every other file loaded exactly as in the plain night

    wh = tmp_path / "with-password.duckdb"
    night = _night(inbox, sources, wh, PASSWORD)
    assert night.returncode == 0, (night.stdout + night.stderr)[-3000:]
    assert PASSWORD not in night.stdout + night.stderr
    assert _files(wh) == plain  # the encrypted workbook's counts are the plain one's, file by file
    with duckdb.connect(str(wh), read_only=True) as con, duckdb.connect(str(sample_warehouse), read_only=True) as ref:
        sql = "SELECT round(sum(amount_usd), 2), count(*) FROM fact_funding_line WHERE agency_code = 'MOD'"
        assert con.execute(sql).fetchone() == ref.execute(sql).fetchone()
