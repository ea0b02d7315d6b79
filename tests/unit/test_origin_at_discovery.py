"""A remote drop's lineage is found once a night: discovery reads each mirrored folder's record (.dcf-remote.json)
once and puts every file's remote location on its task (FileTask.origin); processing a file reads no record."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml

from flows import nightly_discover, remote
from schemas.settings import Settings
from schemas.sources import SourceConfig

ROOT = Path(__file__).resolve().parents[2]
MOD = yaml.safe_load((ROOT / "sources" / "mod.yaml").read_text(encoding="utf-8"))


def test_discovery_puts_the_remote_location_on_each_fetched_file_reading_the_record_once(tmp_path, monkeypatch):
    src = SourceConfig.model_validate(
        {**MOD, "remote": {"url": "sftp://dcf@drop.example:22/out/", "credentials": {"env": "X"}}}
    )
    folder = tmp_path / "inbox" / src.inbox_dir
    (folder / "sub").mkdir(parents=True)
    fetched = ["MOD_budget_FY2024.csv", "sub/MOD_budget_FY2025.csv"]
    for rel in [*fetched, "MOD_budget_FY2026.csv"]:  # the last one dropped by hand, not fetched
        (folder / rel).write_text("Program Code,Program Name\nP1,One\n", encoding="utf-8")
    remote._write_manifest(folder, src.remote.location.shown, {rel: {"token": "t"} for rel in fetched})  # type: ignore[union-attr]
    reads: list[Path] = []
    real = remote.read_manifest
    monkeypatch.setattr(remote, "read_manifest", lambda f: reads.append(f) or real(f))
    monkeypatch.setattr(nightly_discover, "fetch_drops", lambda *a, **k: [])  # the drop itself is not reached here
    monkeypatch.setattr(nightly_discover, "get_run_logger", lambda: logging.getLogger("test"))
    settings = Settings.resolve(inbox=tmp_path / "inbox", warehouse=tmp_path / "w.duckdb")
    todo, unchanged, refused = nightly_discover.discover.fn(settings, [src], False)
    assert not unchanged and not refused
    origins = {t.file_key: t.origin for t in todo}
    assert origins == {
        "MOD/MOD_budget_FY2024.csv": "sftp://dcf@drop.example:22/out/MOD_budget_FY2024.csv",
        "MOD/sub/MOD_budget_FY2025.csv": "sftp://dcf@drop.example:22/out/sub/MOD_budget_FY2025.csv",
        "MOD/MOD_budget_FY2026.csv": None,
    }
    assert reads == [folder]  # once for the folder, not once per file
