"""The warehouse key (warehouse/connect.py) and the analyst edition (warehouse/analyst.py) on small real DuckDB
files: a file written under the key opens with it and with nothing else, a missing or wrong key is one sentence
naming the setting and never the key, and the analyst edition published beside the full file holds no row of a
restricted agency. The whole night is in tests/system/test_sensitive.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pytest
import yaml

from schemas.settings import KEY_ENV, KEY_SECRET_ENV
from schemas.sources import SourceConfigError, load_source
from warehouse import analyst, connect, publish
from warehouse.errors import WarehouseKeyProblem

KEY = "correct horse battery staple 42"
OTHER = "a different key, also long enough"


def test_the_httpfs_extension_that_writes_encrypted_files_is_installed():
    """Not a skip: without the package (duckdb-extension-httpfs, the version of duckdb) a key cannot be used."""
    assert connect.httpfs_extension().name == "httpfs.duckdb_extension"


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture
def unkeyed(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)


def _write(path: Path) -> Path:
    """A small warehouse-like file through the helper (encrypted when a key is set)."""
    con = connect.open_warehouse(path, read_only=False)
    try:
        con.execute("CREATE TABLE t AS SELECT range AS i, 'secret-line-' || range AS s FROM range(100)")
        con.execute("CREATE VIEW v AS SELECT count(*) AS n FROM t")
        con.execute("COMMENT ON VIEW v IS 'how many'")
    finally:
        con.close()
    return path


def test_without_a_key_a_file_opens_exactly_as_before(tmp_path, unkeyed):
    path = _write(tmp_path / "w.duckdb")
    assert not connect.is_encrypted(path)
    with duckdb.connect(str(path), read_only=True) as con:  # any DuckDB reads it
        assert con.execute("SELECT n FROM v").fetchone() == (100,)
    with connect.open_warehouse(path) as con:
        assert con.execute("SELECT current_database(), (SELECT n FROM v)").fetchone() == ("w", 100)
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM t")


@pytest.mark.parametrize("read_only", [False, True])
def test_with_or_without_a_key_duckdb_spills_beside_the_warehouse_not_into_the_working_folder(
    tmp_path, monkeypatch, read_only
):
    path = tmp_path / "w.duckdb"
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    _write(path)  # plain, as DuckDB opens a file: its temp folder is the file's name + .tmp
    with connect.open_warehouse(path, read_only=read_only) as con:
        assert con.execute("SELECT current_setting('temp_directory')").fetchone() == (f"{path}.tmp",)
    monkeypatch.setenv(KEY_ENV, KEY)
    keyed_path = _write(tmp_path / "k.duckdb")  # under the key: attached to an in-memory database
    monkeypatch.chdir(tmp_path)
    with connect.open_warehouse(keyed_path, read_only=read_only) as con:
        assert con.execute("SELECT current_setting('temp_directory')").fetchone() == (f"{keyed_path}.tmp",)
        con.execute("SET memory_limit = '16MB'")  # make it spill: a window's sort larger than memory
        con.execute("SET threads = 1")
        sorted_rows = "SELECT row_number() OVER (ORDER BY hash(i)) AS x FROM range(3000000) t(i)"
        assert con.execute(f"SELECT max(x) FROM ({sorted_rows})").fetchone() == (3_000_000,)
    assert not (tmp_path / ".tmp").exists()


def test_a_file_written_under_the_key_opens_with_it_and_with_nothing_else(tmp_path, keyed, monkeypatch):
    path = _write(tmp_path / "w.duckdb")
    assert connect.is_encrypted(path)
    assert b"secret-line-" not in path.read_bytes() and b"how many" not in path.read_bytes()
    with connect.open_warehouse(path) as con:  # unqualified names work: the file is the default catalog
        assert con.execute("SELECT current_database(), (SELECT n FROM v)").fetchone() == ("warehouse", 100)
        assert con.execute("SELECT comment FROM duckdb_views() WHERE view_name = 'v'").fetchone() == ("how many",)
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM t")
    # DuckDB's own words (warehouse/connect.py recognises them; pinned here so an upgrade that changes them shows)
    with pytest.raises(duckdb.CatalogException, match=f'Cannot open encrypted database "{path}" without a key'):
        duckdb.connect(str(path), read_only=True)
    with pytest.raises(duckdb.InvalidInputException, match="Wrong encryption key used to open the database file"):
        duckdb.connect().execute(f"ATTACH '{path}' AS w (ENCRYPTION_KEY '{OTHER}', READ_ONLY)")
    with pytest.raises(duckdb.InvalidInputException, match="options were not recognized: encryption_key"):
        duckdb.connect(str(path), read_only=True, config={"encryption_key": KEY})
    plain = tmp_path / "plain.duckdb"
    duckdb.connect(str(plain)).close()
    with pytest.raises(
        duckdb.CatalogException, match="A key is explicitly specified, but database .* is not encrypted"
    ):
        duckdb.connect().execute(f"ATTACH '{plain}' AS p (ENCRYPTION_KEY '{KEY}', READ_ONLY)")

    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(WarehouseKeyProblem) as missing:
        connect.open_warehouse(path)
    assert str(missing.value) == (
        f"the warehouse {path} is encrypted and no key is set: set {KEY_ENV} (the key) or {KEY_SECRET_ENV} "
        "(the name of a Prefect Secret block holding it)"
    )
    monkeypatch.setenv(KEY_ENV, OTHER)
    with pytest.raises(WarehouseKeyProblem) as wrong:
        connect.open_warehouse(path, read_only=False)
    assert str(wrong.value) == (
        f"the key in the environment variable {KEY_ENV} does not open the warehouse {path} (wrong key)"
    )
    for problem in (missing.value, wrong.value):
        assert KEY not in str(problem) and OTHER not in str(problem) and problem.__cause__ is None


@pytest.mark.parametrize(
    "env,expected",
    [
        ({KEY_ENV: ""}, f"the environment variable {KEY_ENV} is set but holds no key"),
        ({KEY_ENV: "tiny-k3y"}, f"the key in the environment variable {KEY_ENV} is shorter than 16 characters"),
        ({KEY_ENV: KEY, KEY_SECRET_ENV: "warehouse-key"}, f"set {KEY_ENV} (the key) or {KEY_SECRET_ENV}"),
    ],
)
def test_a_setting_that_holds_no_usable_key_is_refused_never_ignored(env, expected, monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(WarehouseKeyProblem, match=expected.replace("(", r"\(").replace(")", r"\)")) as problem:
        connect.open_warehouse(tmp_path / "new.duckdb", read_only=False)  # never a plain file by accident
    assert not (tmp_path / "new.duckdb").exists()
    assert "tiny-k3y" not in str(problem.value) and KEY not in str(problem.value)


def test_a_plain_file_reads_under_a_key_but_is_never_written_in_plain_text(tmp_path, unkeyed, monkeypatch):
    path = _write(tmp_path / "w.duckdb")
    monkeypatch.setenv(KEY_ENV, KEY)
    with connect.open_warehouse(path) as con:  # written before the key was set (or an analyst edition)
        assert con.execute("SELECT n FROM v").fetchone() == (100,)
    with pytest.raises(WarehouseKeyProblem, match="is not encrypted, and a key is set"):
        connect.open_warehouse(path, read_only=False)
    encrypted = tmp_path / "e.duckdb"
    connect.encrypt_copy(path, encrypted)  # what the staging copy does once the key is set
    assert connect.is_encrypted(encrypted)
    with connect.open_warehouse(encrypted) as con:
        assert con.execute("SELECT (SELECT n FROM v), count(*) FROM t").fetchone() == (100, 100)
        assert con.execute("SELECT comment FROM duckdb_views() WHERE view_name = 'v'").fetchone() == ("how many",)


def test_the_sandbox_of_dcf_sql_holds_under_the_key(tmp_path, keyed):
    path = _write(tmp_path / "w.duckdb")
    spill = tmp_path / "spill"
    config = {"enable_external_access": False, "lock_configuration": True, "temp_directory": str(spill)}
    with connect.open_warehouse(path, config=config) as con:
        assert con.execute("SELECT n FROM v").fetchone() == (100,)
        assert con.execute("SELECT current_setting('temp_directory')").fetchone() == (str(spill),)
        assert con.execute("SELECT current_setting('temp_file_encryption')").fetchone() == (True,)
        for refused in (
            f"ATTACH '{tmp_path / 'other.duckdb'}' AS o",
            "SET enable_external_access = true",
            "SELECT * FROM read_text('/etc/hostname')",
            "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(refused)


def _tiny_warehouse(path: Path, seq: int, restricted: list[str] | None) -> Path:
    con = connect.open_warehouse(path, read_only=False)
    try:
        con.execute("CREATE TABLE warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
        con.execute(f"INSERT INTO warehouse_meta VALUES ('schema_version', 'x'), ('publish_seq', '{seq}')")
        if restricted:
            con.execute(f"INSERT INTO warehouse_meta VALUES ('{analyst.RESTRICTED_KEY}', '{json.dumps(restricted)}')")
        con.execute("CREATE TABLE dim_agency (agency_code VARCHAR PRIMARY KEY, name_en VARCHAR NOT NULL)")
        con.execute("INSERT INTO dim_agency VALUES ('MOD', 'Ministry of Defense'), ('SEC', 'Secret Service')")
        con.execute(
            "CREATE TABLE audit_source_file (file_key VARCHAR, agency_code VARCHAR, load_id VARCHAR, status VARCHAR, "
            "is_current BOOLEAN, withdrawn_at TIMESTAMP, rows_read BIGINT, rows_loaded BIGINT, "
            "rows_quarantined BIGINT, rows_skipped BIGINT)"
        )
        con.execute(
            "INSERT INTO audit_source_file VALUES ('MOD/a.xlsx', 'MOD', 'L1', 'loaded', true, NULL, 10, 9, 1, 0), "
            "('SEC/ops.xlsx', 'SEC', 'L1', 'loaded', true, NULL, 5, 4, 0, 1)"
        )
        con.execute(
            "CREATE TABLE audit_load (load_id VARCHAR PRIMARY KEY, started_at TIMESTAMP, finished_at TIMESTAMP, load_seq BIGINT, "
            "files_seen INT, files_processed INT, files_unchanged INT, files_failed INT, rows_read BIGINT, "
            "rows_loaded BIGINT, rows_quarantined BIGINT, rows_skipped BIGINT)"
        )
        con.execute("INSERT INTO audit_load VALUES ('L1', now(), now(), 1, 2, 2, 0, 0, 15, 13, 1, 1)")
        con.execute("CREATE TABLE fact_funding_line (file_key VARCHAR, agency_code VARCHAR, amount DOUBLE)")
        con.execute("INSERT INTO fact_funding_line VALUES ('MOD/a.xlsx', 'MOD', 1.0), ('SEC/ops.xlsx', 'SEC', 2.0)")
        con.execute("CREATE TABLE quarantine_row (file_key VARCHAR, raw_json VARCHAR)")  # no agency_code column
        con.execute("INSERT INTO quarantine_row VALUES ('MOD/a.xlsx', '{}'), ('SEC/ops.xlsx', '{\"op\": \"x\"}')")
        con.execute("CREATE TABLE dim_country (iso3 VARCHAR)")
        con.execute("INSERT INTO dim_country VALUES ('EGY')")
        con.execute("CREATE VIEW funding AS SELECT agency_code, sum(amount) AS total FROM fact_funding_line GROUP BY 1")
        con.execute("COMMENT ON VIEW funding IS 'funding per agency'")
    finally:
        con.close()
    return path


@pytest.mark.parametrize("key", [KEY, None], ids=["encrypted", "plain"])
def test_the_analyst_edition_leaves_the_restricted_agency_out_and_follows_each_publish(tmp_path, monkeypatch, key):
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    if key:
        monkeypatch.setenv(KEY_ENV, key)
    else:
        monkeypatch.delenv(KEY_ENV, raising=False)
    wh = tmp_path / "warehouse.duckdb"
    edition = tmp_path / "warehouse.analyst.duckdb"
    said: list[str] = []
    publish.publish_file(_tiny_warehouse(tmp_path / "ready1", 1, ["SEC"]), wh, 1, said.append)
    assert connect.is_encrypted(wh) is bool(key) and not connect.is_encrypted(edition)
    with duckdb.connect(str(edition), read_only=True) as con:  # any DuckDB opens it: no key
        assert con.execute("SELECT * FROM funding").fetchall() == [("MOD", 1.0)]
        assert con.execute("SELECT comment FROM duckdb_views() WHERE view_name = 'funding'").fetchone() == (
            "funding per agency",
        )
        for table in ("dim_agency", "audit_source_file", "fact_funding_line", "quarantine_row"):
            rows = con.execute(f"SELECT * FROM {table}").fetchall()
            assert rows and not any("SEC" in str(row) for row in rows), (table, rows)
        assert con.execute("SELECT count(*) FROM dim_country").fetchone() == (1,)
        assert con.execute(
            "SELECT files_seen, files_processed, rows_read, rows_loaded, rows_quarantined, rows_skipped FROM audit_load"
        ).fetchone() == (1, 1, 10, 9, 1, 0)  # the night's totals without the restricted agency's file
        meta = dict(con.execute("SELECT * FROM warehouse_meta").fetchall())
        assert meta["publish_seq"] == "1" and analyst.RESTRICTED_KEY not in meta and "SEC" not in str(meta)
    assert os.readlink(edition.with_name(edition.name + ".wal")) == publish.WAL_GUARD_TARGET
    assert any("analyst edition warehouse.analyst.duckdb published: 4 row(s)" in line for line in said), said

    publish.publish_file(_tiny_warehouse(tmp_path / "ready2", 2, None), wh, 2, said.append)  # nothing restricted
    assert not edition.exists() and "no agency is restricted any more" in said[-1]
    assert not list(tmp_path.glob(".*publish-*"))


def test_setting_the_key_removes_the_plain_versions_and_refuses_to_roll_back_to_them(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_SECRET_ENV, raising=False)
    wh = tmp_path / "warehouse.duckdb"
    publish.publish_file(_tiny_warehouse(tmp_path / "ready1", 1, None), wh, 1, print)
    publish.publish_file(_tiny_warehouse(tmp_path / "ready2", 2, None), wh, 2, print)
    monkeypatch.setenv(KEY_ENV, KEY)
    with pytest.raises(publish.WarehouseError, match="written without encryption, before the key was set"):
        publish.rollback(wh, 1, "x", print)
    said: list[str] = []
    publish.publish_file(_tiny_warehouse(tmp_path / "ready3", 3, None), wh, 3, said.append)
    assert publish.version_seqs(wh) == [3] and connect.is_encrypted(wh)
    assert [line for line in said if line.startswith("removed version")] == [
        "removed version 000001: written without encryption, before the key was set",
        "removed version 000002: written without encryption, before the key was set",
    ]


def test_restricted_is_true_or_false_and_nothing_else(tmp_path):
    good = yaml.safe_load((Path(__file__).resolve().parents[2] / "sources" / "moi.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "moi.yaml"
    for value, ok in ((True, True), (False, True), ("yes", False), (1, False), ("true", False)):
        path.write_text(yaml.safe_dump({**good, "restricted": value}, allow_unicode=True), encoding="utf-8")
        if ok:
            assert load_source(path).restricted is value
        else:
            with pytest.raises(SourceConfigError, match="key 'restricted'"):
                load_source(path)
    assert load_source(Path(__file__).resolve().parents[2] / "sources" / "moi.yaml").restricted is False


def test_a_connection_of_ones_own_attaches_the_warehouse_with_the_key(tmp_path, keyed, monkeypatch):
    encrypted = _write(tmp_path / "e.duckdb")
    monkeypatch.delenv(KEY_ENV)
    plain = _write(tmp_path / "p.duckdb")
    monkeypatch.setenv(KEY_ENV, KEY)
    with duckdb.connect() as con:  # e.g. warehouse/lake.py copying the warehouse into a DuckLake
        connect.attach(con, encrypted, "wh")
        connect.attach(con, plain, "old")
        assert con.execute("SELECT (SELECT n FROM wh.v), (SELECT n FROM old.v)").fetchone() == (100, 100)
    monkeypatch.setenv(KEY_ENV, OTHER)
    with duckdb.connect() as con, pytest.raises(WarehouseKeyProblem, match="wrong key") as wrong:
        connect.attach(con, encrypted, "wh")
    assert OTHER not in str(wrong.value)


def test_a_key_in_a_secret_block_is_read_through_the_reader_the_orchestration_layer_gives(monkeypatch):
    """warehouse/ imports no Prefect: a Secret block is read by the reader flows/ or dcf registers, or not at all."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(KEY_SECRET_ENV, "dcf-unit-key-block")
    monkeypatch.setattr(connect, "_secrets", {})
    monkeypatch.setattr(connect, "_block_reader", None)
    with pytest.raises(WarehouseKeyProblem, match="reads no Prefect Secret blocks.*set " + KEY_ENV):
        connect.configured_key()
    asked: list[str] = []
    connect.use_block_reader(lambda name: asked.append(name) or KEY)
    assert connect.configured_key() == (KEY, connect.KeySetting(secret="dcf-unit-key-block"))
    assert asked == ["dcf-unit-key-block"]
