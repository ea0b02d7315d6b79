"""Every shipped source YAML validates; a bad one is rejected naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from schemas.sources import SourceConfigError, load_source, load_sources
from tests.conftest import REFERENCE

ROOT = Path(__file__).resolve().parents[2]
GOOD = yaml.safe_load((ROOT / "sources" / "mod.yaml").read_text(encoding="utf-8"))


def test_every_shipped_source_validates():
    configs = load_sources(ROOT / "sources")
    assert {c.agency for c in configs} == {"MOD", "MOI", "GIP", "MOF", "SANG", "GAMI", "SIPRI", "ARMSREG", "PLEDGES"}
    assert len({c.fiscal_year_start_month for c in configs}) >= 3


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _mutate(fn) -> dict:
    data = yaml.safe_load(yaml.safe_dump(GOOD, allow_unicode=True))
    fn(data)
    return data


@pytest.mark.parametrize(
    "mutation,key_text",
    [
        (lambda d: d["files"][0]["columns"].pop("amount"), "files.0"),
        (lambda d: d["files"][0]["columns"].update(amont=["Amount"]), "amont"),
        (lambda d: d.update(fiscal_year_start_month=13), "fiscal_year_start_month"),
        (lambda d: d["files"][0].update(unit="dozens"), "files.0.unit"),
        (lambda d: d["files"][0].update(header={"row": 3, "detect": True}), "files.0.header"),
        (lambda d: d.update(agency="mod lower"), "agency"),
        (lambda d: d.pop("name_en"), "name_en"),
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["files"][0].update(severity={"no_such_rule": "warn"}), "files.0.severity"),
        (lambda d: d["files"][0].update(fx={"policy": "spot"}), "files.0.fx.policy"),
        (lambda d: d["files"][0].update(severity={"amount_not_number": "warn"}), "cannot be 'warn'"),
        (lambda d: d["files"][0].update(date_order="year_first"), "files.0.date_order"),
        (lambda d: d["files"][0].update(constants={"amount": "1"}), "both read from the file and constant"),
        (lambda d: d["files"][0].update(constants={"colour": "blue"}), "unknown column(s) ['colour']"),
        (lambda d: d["files"][0].update(keep_rows={"column": "stage", "in": ["a"], "matches": "b"}), "not both"),
        (lambda d: d["files"][0].update(keep_rows={"column": "stage", "matches": "(unclosed"}), "not a regular"),
        (lambda d: d["files"][0].update(keep_rows={"column": "nowhere", "in": ["x"]}), "'nowhere' is not a column"),
        (lambda d: d["files"][0].update(fiscal_year_from="start_date"), "files.0.fiscal_year_from"),
        (
            lambda d: (
                d.update(fiscal_calendar="hijri")
                or d["files"][0].update(fiscal_year_from="transaction_date")
                or d["files"][0]["columns"].update(transaction_date=["Date"])
            ),
            "Gregorian fiscal years only",
        ),
    ],
)
def test_bad_yaml_names_file_and_key(tmp_path, mutation, key_text):
    path = _write(tmp_path, _mutate(mutation))
    with pytest.raises(SourceConfigError) as exc:
        load_source(path)
    assert str(path) in str(exc.value)
    assert key_text in str(exc.value)


def test_unparseable_yaml(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("agency: [unclosed", encoding="utf-8")
    with pytest.raises(SourceConfigError, match="x.yaml: cannot read YAML"):
        load_source(path)


def test_duplicate_agency_rejected(tmp_path):
    for name in ("a.yaml", "b.yaml"):
        _write(tmp_path, GOOD).rename(tmp_path / name)
    with pytest.raises(SourceConfigError, match="declared twice"):
        load_sources(tmp_path)


def test_a_broken_reference_table_is_reported_by_name(tmp_path):
    import shutil

    from flows.reference import ReferenceError_, check_reference

    reference = tmp_path / "reference"
    shutil.copytree(REFERENCE, reference)
    (reference / "fx_pegs.csv").write_text("currency,rate\nSAR,3.75\n", encoding="utf-8")
    with pytest.raises(ReferenceError_, match=r"fx_pegs.csv: missing column\(s\) valid_from, valid_to, units_per_usd"):
        check_reference(reference)
    check_reference(ROOT / "reference")  # the shipped tables pass


def test_the_readme_example_source_is_a_valid_config():
    """Every key the README's 'Adding an agency' example shows exists in the config model (extra keys are refused),
    with the values it shows."""
    import re

    from schemas.sources import SourceConfig
    from schemas.spec_base import PasswordSpec

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Adding an agency", 1)[1].split("### Adding a reference dataset", 1)[0]
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", section, re.S)]
    assert len(blocks) == 4
    protected = blocks.pop(2)  # a file entry only: where an encrypted workbook's password comes from
    assert PasswordSpec.model_validate(protected[0]["password"]) == PasswordSpec(env="DCF_MOD_WORKBOOK_PASSWORD")
    navy, donors, register = (SourceConfig.model_validate(b) for b in blocks)
    assert navy.agency == "NAVY" and navy.date_order == "day_first" and navy.files[0].kind == "budget"
    spec = donors.files[0]
    assert spec.missing == ["Not given", ".", "n/a"] and spec.constants == {"partner_country": "Jordan"}
    assert spec.keep_rows is not None and spec.keep_rows.values == ["Committed", "Disbursed"]
    assert spec.fiscal_year_from == "transaction_date" and donors.date_order == "month_first"
    records = register.files[0]
    assert records.kind == "records" and records.dataset == "transfer_register" and records.key == ["deal_id"]
    assert records.columns["value"].type == "money" and records.columns["value"].as_of == "order_year"
    assert records.columns["order_year"].ranges == "first" and records.encoding == "latin-1"


def test_the_readme_documents_every_key_of_a_source():
    """Every key of the config models appears in the README's 'Adding an agency' section (as `key` or `key:`),
    so a steward can find each option there."""
    import re

    from schemas.sources import (
        ControlTotal,
        FileSpec,
        FxSpec,
        HeaderSpec,
        KeepRows,
        RecordColumn,
        RecordsFileSpec,
        SourceConfig,
    )

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Adding an agency", 1)[1].split("\n## ", 1)[0]
    models = (SourceConfig, FileSpec, RecordsFileSpec, RecordColumn, HeaderSpec, FxSpec, KeepRows, ControlTotal)
    missing = sorted(
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if not re.search(rf"(`{re.escape(field.alias or name)}`|\b{re.escape(field.alias or name)}:)", section)
    )
    assert missing == []
