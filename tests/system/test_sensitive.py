"""Sensitive lines stay closed (issue 16, point 3; docs/adr/0010): a real night with the warehouse key set and one
agency restricted. The full warehouse and every kept version are encrypted (nothing opens them without the key: not
Python's duckdb, not the DuckDB CLI); the analyst edition beside it opens anywhere without a key, holds every other
agency's rows exactly as the full warehouse does, and not one row, quarantined cell, failure or file name of the
restricted agency; ``dcf sql`` and ``dcf status`` work with the key and fail in one line without it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from flows.nightly import run_nightly
from schemas.settings import KEY_ENV, KEY_SECRET_ENV
from tests.system.test_analyst_access import duckdb_cli
from warehouse import analyst, connect, publish
from warehouse.errors import WarehouseKeyProblem

ROOT = Path(__file__).resolve().parents[2]
DCF = [sys.executable, "-m", "dcf.cli"]
KEY = "night-key: sensitive lines stay closed"
RESTRICTED = "MOI"
README_SQL = re.findall(r"^```sql\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S | re.M)


pytestmark = pytest.mark.slow


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([duckdb_cli(), *args], capture_output=True, text=True, timeout=120)


def dcf(*args: str, key: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, KEY_SECRET_ENV)}
    env["COLUMNS"] = "200"
    if key is not None:
        env[KEY_ENV] = key
    return subprocess.run([*DCF, *args], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def night(sample_warehouse, sample_inbox, tmp_path_factory):
    """The sample's published state (a night without a key or a restriction, with its private versions), then a
    night with the key set and MOI restricted in a copy of the source YAMLs."""
    inbox, _ = sample_inbox
    base = tmp_path_factory.mktemp("sensitive")
    wh = base / "warehouse.duckdb"
    shutil.copyfile(sample_warehouse, wh)
    shutil.copytree(publish.versions_dir(sample_warehouse), publish.versions_dir(wh))
    publish.guard_wal(wh, print)
    sources = base / "sources"
    shutil.copytree(ROOT / "sources", sources)
    moi = sources / "moi.yaml"
    moi.write_text(moi.read_text(encoding="utf-8") + "\nrestricted: true\n", encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(KEY_SECRET_ENV, raising=False)
        mp.setenv(KEY_ENV, KEY)
        summary = run_nightly(inbox=str(inbox), warehouse=str(wh), sources=str(sources))
        assert summary.outcome == "success", summary
        again = run_nightly(inbox=str(inbox), warehouse=str(wh), sources=str(sources))
    return wh, analyst.analyst_path(wh), again


def _full(wh: Path) -> duckdb.DuckDBPyConnection:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, KEY)
        return connect.open_warehouse(wh)


def test_the_full_warehouse_and_every_version_open_only_with_the_key(night, sample_warehouse):
    wh, _, _ = night
    assert b"MOI_budget" in sample_warehouse.read_bytes()  # a plain file shows its file names...
    for path in [wh, *publish.versions_dir(wh).iterdir()]:  # ...these show nothing
        assert connect.is_encrypted(path), path
        assert b"MOI_budget" not in path.read_bytes() and b"MOD_budget" not in path.read_bytes(), path
    assert len(publish.version_seqs(wh)) == 1  # the plain versions of before the key were removed
    with pytest.raises(duckdb.CatalogException, match="Cannot open encrypted database .* without a key"):
        duckdb.connect(str(wh), read_only=True)
    no_key = cli("-readonly", str(wh), "-c", "SELECT count(*) FROM funding_lines")
    assert no_key.returncode != 0 and "without a key" in no_key.stderr, no_key
    wrong = cli("-c", f"ATTACH '{wh}' AS w (ENCRYPTION_KEY 'not the key at all', READ_ONLY)")
    assert wrong.returncode != 0 and "Wrong encryption key" in wrong.stderr, wrong
    keyed = cli(
        "-csv",
        "-c",
        f"ATTACH '{wh}' AS w (ENCRYPTION_KEY '{KEY}', READ_ONLY); USE w; "
        f"SELECT count(*) FROM funding_lines WHERE agency_code = '{RESTRICTED}'",
    )
    assert keyed.returncode == 0, keyed.stderr
    with _full(wh) as con:
        assert (
            int(keyed.stdout.split()[-1])
            == con.execute(f"SELECT count(*) FROM funding_lines WHERE agency_code = '{RESTRICTED}'").fetchone()[0]
            > 100
        )


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for table, column, dtype in con.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM duckdb_columns() c JOIN duckdb_tables() t "
        "USING (database_name, schema_name, table_name) WHERE c.database_name = ? AND c.schema_name = 'main'",
        [catalog],
    ).fetchall():
        found.setdefault(table, {})[column] = dtype
    return found


def _kept(columns: dict[str, str]) -> str:
    """The rows of a table that are not the restricted agency's."""
    keep = "true"
    if "agency_code" in columns:
        keep += f" AND agency_code IS DISTINCT FROM '{RESTRICTED}'"
    if "file_key" in columns:
        keep += f" AND NOT starts_with(file_key, '{RESTRICTED}/')"
    return keep


def test_the_analyst_edition_holds_nothing_of_the_restricted_agency(night):
    wh, edition, _ = night
    assert not connect.is_encrypted(edition)
    raw = edition.read_bytes()
    assert b"MOD_budget" in raw and b"MOI_budget" not in raw and b"MOI/" not in raw
    con = _full(wh)
    try:
        con.execute(f"ATTACH '{edition}' AS ed (READ_ONLY)")
        needles = {f"{RESTRICTED}/", "Ministry of Interior", "وزارة الداخلية"}
        needles |= {
            Path(p).name
            for (p,) in con.execute(f"SELECT path FROM audit_source_file WHERE agency_code = '{RESTRICTED}'").fetchall()
        }
        needles |= {  # MOI's own program codes and names (none another agency uses)
            v
            for (v,) in con.execute(
                f"SELECT DISTINCT unnest([program_code, program_name]) FROM fact_funding_line WHERE agency_code = "
                f"'{RESTRICTED}' EXCEPT SELECT unnest([program_code, program_name]) FROM fact_funding_line "
                f"WHERE agency_code <> '{RESTRICTED}'"
            ).fetchall()
            if v and len(v) >= 5
        }
        held = con.execute(f"SELECT raw_json FROM quarantine_row WHERE agency_code = '{RESTRICTED}'").fetchall()
        assert held  # quarantined cells as read, and the values its failures quote
        needles |= {str(v) for (raw,) in held for v in json.loads(raw).values() if isinstance(v, str) and len(v) >= 6}
        needles |= {
            v
            for (v,) in con.execute(
                f"SELECT value FROM audit_validation_failure WHERE agency_code = '{RESTRICTED}'"
            ).fetchall()
            if v and len(v) >= 6
        }
        tables = _tables(con, "ed")
        assert set(tables) == set(_tables(con, "warehouse"))  # every table is there
        texts = [(t, c) for t, cols in tables.items() for c, dtype in cols.items() if dtype in ("VARCHAR", "VARCHAR[]")]
        for table, column in texts:  # a text another agency's rows carry too is no trace of MOI's
            needles -= {
                n
                for (n,) in con.execute(
                    f"SELECT DISTINCT n FROM (SELECT unnest(?::VARCHAR[]) AS n), warehouse.{table} "
                    f'WHERE {_kept(tables[table])} AND contains(CAST("{column}" AS VARCHAR), n)',
                    [sorted(needles)],
                ).fetchall()
            }
        assert len(needles) > 20 and any(Path(n).suffix for n in needles)
        for table, columns in tables.items():
            if "agency_code" in columns:
                n = con.execute(f"SELECT count(*) FROM ed.{table} WHERE agency_code = '{RESTRICTED}'").fetchone()
                assert n == (0,), table
        scanned = 0
        for table, column in texts:
            text = f'CAST("{column}" AS VARCHAR)'
            hits = con.execute(
                f"SELECT DISTINCT n FROM (SELECT unnest(?::VARCHAR[]) AS n), ed.{table} "
                f"WHERE {text} = '{RESTRICTED}' OR contains({text}, n) LIMIT 3",
                [sorted(needles)],
            ).fetchall()
            assert hits == [], (table, column, hits)
            scanned += 1
        assert scanned > 100
        # everything else is the full warehouse's, row for row
        for table, columns in tables.items():
            if table in ("warehouse_meta", "audit_load"):
                continue
            keep = _kept(columns)
            for left, right in ((f"warehouse.{table} WHERE {keep}", f"ed.{table}"), (f"ed.{table}", None)):
                other = right or f"warehouse.{table} WHERE {keep}"
                differ = con.execute(f"SELECT count(*) FROM (FROM {left} EXCEPT ALL FROM {other})").fetchone()
                assert differ == (0,), table
        assert (
            con.execute("SELECT count(*) FROM ed.fact_funding_line").fetchone()[0]
            == con.execute(
                f"SELECT count(*) FROM warehouse.fact_funding_line WHERE agency_code <> '{RESTRICTED}'"
            ).fetchone()[0]
        )
        totals = "files_processed, files_failed, rows_read, rows_loaded, rows_quarantined, rows_skipped"
        for load_id, *counts in con.execute(f"SELECT load_id, {totals} FROM warehouse.audit_load").fetchall():
            moi = con.execute(  # the night's totals, less what the restricted agency's files of that night counted
                "SELECT count(*), count(*) FILTER (WHERE status = 'failed'), coalesce(sum(rows_read), 0), "
                "coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_skipped), 0) "
                f"FROM warehouse.audit_source_file WHERE agency_code = '{RESTRICTED}' AND load_id = ?",
                [load_id],
            ).fetchone()
            expected = tuple(int(c) - int(m) for c, m in zip(counts, moi, strict=True))
            assert con.execute(f"SELECT {totals} FROM ed.audit_load WHERE load_id = ?", [load_id]).fetchone() == (
                expected
            )
        meta = dict(con.execute("SELECT * FROM ed.warehouse_meta").fetchall())
        assert meta["publish_seq"] == str(publish.version_seqs(wh)[-1]) and RESTRICTED not in str(meta)
    finally:
        con.close()


def test_the_analyst_edition_is_written_in_the_warehouse_storage_format(night):
    _, edition, _ = night
    assert connect.storage_version(edition) == connect.STORAGE_VERSION + "+"


def test_analysts_open_the_edition_with_their_tools_and_the_readme_queries_run(night):
    _, edition, _ = night
    with duckdb.connect(str(edition), read_only=True) as con:  # Python, no key
        for sql in README_SQL:
            con.execute(sql).fetchall()
        agencies = {a for (a,) in con.execute("SELECT agency_code FROM mart_data_quality").fetchall()}
        assert RESTRICTED not in agencies and {"MOD", "MOF", "GIP"} <= agencies
    shell = cli(
        "-readonly",
        "-csv",
        str(edition),
        "-c",
        "SELECT partner_name FROM mart_funding_by_partner_year ORDER BY committed_usd DESC NULLS LAST LIMIT 1",
    )
    assert shell.returncode == 0 and len(shell.stdout.splitlines()) == 2, shell
    write = cli(str(edition), "-c", "CREATE TABLE mine AS SELECT 1")  # read-write by default, guarded like the full
    assert write.returncode != 0 and ".wal" in write.stderr, write
    assert os.readlink(edition.with_name(edition.name + ".wal")) == publish.WAL_GUARD_TARGET


def test_dcf_reads_with_the_key_and_fails_in_one_line_without_it(night):
    wh, edition, again = night
    assert again.outcome == "nothing_new"  # the restriction and the edition are as the night left them
    query = f"SELECT count(*) AS n FROM funding_lines WHERE agency_code = '{RESTRICTED}'"
    ok = dcf("sql", "--warehouse", str(wh), query, "--format", "csv", key=KEY)
    assert ok.returncode == 0 and int(ok.stdout.split()[-1]) > 100, ok.stderr
    status = dcf("status", "--warehouse", str(wh), "--format", "json", key=KEY)
    assert status.returncode == 0 and json.loads(status.stdout)["analyst_edition"] == str(edition), status.stderr
    screen = dcf("status", "--warehouse", str(wh), key=KEY)
    assert f"analyst edition: {edition} (" in screen.stdout.replace("\n", ""), screen.stdout
    analysts = dcf("sql", "--warehouse", str(edition), query, "--format", "csv", key=None)
    assert analysts.returncode == 0 and analysts.stdout.split()[-1] == "0", analysts.stderr
    for command in (["sql", query], ["status"], ["failures"], ["rollback", "--list"]):
        for key, said in (
            (None, f"is encrypted and no key is set: set {KEY_ENV}"),
            ("a wrong key, long enough", f"the key in the environment variable {KEY_ENV} does not open"),
        ):
            done = dcf(*command, "--warehouse", str(wh), key=key)
            assert done.returncode == 2, (command, key, done.stdout, done.stderr)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: ") and said in lines[0], (command, done.stderr)
            assert "Traceback" not in done.stdout + done.stderr
            assert KEY not in done.stdout + done.stderr and "a wrong key" not in done.stdout + done.stderr


def test_the_key_can_come_from_a_prefect_secret_block(tmp_path, monkeypatch):
    from prefect.blocks.system import Secret

    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(KEY_SECRET_ENV, "dcf-test-warehouse-key-missing")
    with pytest.raises(
        WarehouseKeyProblem, match="the Prefect Secret block 'dcf-test-warehouse-key-missing' could not"
    ):
        connect.open_warehouse(tmp_path / "w.duckdb", read_only=False)
    Secret(value=KEY).save("dcf-test-warehouse-key", overwrite=True)
    monkeypatch.setenv(KEY_SECRET_ENV, "dcf-test-warehouse-key")
    with connect.open_warehouse(tmp_path / "w.duckdb", read_only=False) as con:
        con.execute("CREATE TABLE t AS SELECT 42 AS answer")
    assert connect.is_encrypted(tmp_path / "w.duckdb")
    monkeypatch.delenv(KEY_SECRET_ENV)
    monkeypatch.setenv(KEY_ENV, KEY)  # the same key, from the other place
    with connect.open_warehouse(tmp_path / "w.duckdb") as con:
        assert con.execute("SELECT answer FROM t").fetchone() == (42,)
