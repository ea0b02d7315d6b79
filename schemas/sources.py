"""The typed model of ``sources/<agency>.yaml``: how to read one agency's files.

Adding an agency is a new YAML file (and maybe reference rows), never new Python. A YAML that does not fit this
model is rejected with :class:`SourceConfigError`, whose message names the file and the key.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class FileKind(str, Enum):
    budget = "budget"
    programs = "programs"


#: canonical column -> required? per file kind (the raw contract after column mapping)
CANONICAL_COLUMNS: dict[FileKind, dict[str, bool]] = {
    FileKind.budget: {
        "program_code": True,
        "program_name": False,
        "partner_country": True,
        "category": True,
        "fiscal_year": True,
        "amount": True,
        "currency": False,
        "stage": False,
        "transaction_date": False,
    },
    FileKind.programs: {
        "program_code": True,
        "name_en": True,
        "name_ar": False,
        "partner_countries": False,
        "category": False,
        "start_date": False,
        "end_date": False,
        "status": False,
    },
}

#: columns whose cells are read as typed values (numbers, dates); every other column is read as text
TYPED_COLUMNS = {"amount", "transaction_date", "start_date", "end_date"}

UNIT_FACTORS = {"ones": 1.0, "thousands": 1_000.0, "millions": 1_000_000.0}
STAGES = ("allocated", "committed", "obligated", "disbursed")


class SourceConfigError(ValueError):
    """A source YAML that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeaderSpec(_Strict):
    """Where the header row is: a fixed Excel row (1-based) or detected by the expected column names."""

    row: int | None = Field(default=None, ge=1, description="Excel row number of the header (1-based)")
    detect: bool = False
    max_scan_rows: int = Field(default=20, ge=1, le=500)

    @model_validator(mode="after")
    def _one_way(self) -> "HeaderSpec":
        if (self.row is not None) != self.detect:
            return self
        raise ValueError("give either 'row' or 'detect: true', not both and not neither")


class FxSpec(_Strict):
    """Which rate converts a line: the transaction-date rate (bounded look-back) or the fiscal-period average."""

    policy: Literal["transaction_date", "fiscal_period_average"] = "fiscal_period_average"
    by_stage: dict[Literal["allocated", "committed", "obligated", "disbursed"], Literal["transaction_date", "fiscal_period_average"]] = Field(default_factory=dict)
    lookback_days: int = Field(default=7, ge=0, le=31)


class FileSpec(_Strict):
    kind: FileKind
    pattern: str = Field(description="glob, relative to the agency's inbox folder")
    sheet: str | int = 0
    header: HeaderSpec = HeaderSpec(row=1)
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    unit: Literal["ones", "thousands", "millions", "from_header"] = "ones"
    default_currency: str | None = None
    default_stage: Literal["allocated", "committed", "obligated", "disbursed"] | None = None
    totals_label: str | None = Field(default=None, description="regex (case-insensitive) marking a totals row")
    fx: FxSpec = FxSpec()
    totals_tolerance: float = Field(default=0.0001, ge=0, le=0.1, description="relative; totals row vs sum of lines")
    severity: dict[str, Literal["block", "warn"]] = Field(default_factory=dict, description="rule id -> block | warn")
    columns: dict[str, list[str]]

    @field_validator("columns")
    @classmethod
    def _aliases_not_empty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for key, aliases in v.items():
            if not aliases or not all(isinstance(a, str) and a.strip() for a in aliases):
                raise ValueError(f"column '{key}' needs at least one non-empty header alias")
        return v

    @field_validator("severity")
    @classmethod
    def _known_rules(cls, v: dict[str, str]) -> dict[str, str]:
        from schemas.rules import RULES

        unknown = sorted(set(v) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rule(s) {unknown}; known: {sorted(RULES)}")
        return v

    @model_validator(mode="after")
    def _columns_fit_kind(self) -> "FileSpec":
        known = CANONICAL_COLUMNS[self.kind]
        unknown = sorted(set(self.columns) - set(known))
        if unknown:
            raise ValueError(f"unknown column(s) {unknown} for kind '{self.kind.value}'; known: {sorted(known)}")
        missing = sorted(c for c, required in known.items() if required and c not in self.columns)
        if missing:
            raise ValueError(f"required column(s) {missing} have no aliases")
        if self.kind is FileKind.budget:
            if "currency" not in self.columns and not self.default_currency:
                raise ValueError("budget files need a 'currency' column or a default_currency")
            if "stage" not in self.columns and not self.default_stage:
                raise ValueError("budget files need a 'stage' column or a default_stage")
        return self

    @property
    def unit_factor(self) -> float | None:
        """Scale of the amount cells; None: read it from the amount header's text."""
        return UNIT_FACTORS.get(self.unit)

    @property
    def is_csv(self) -> bool:
        return self.pattern.lower().endswith((".csv", ".txt"))


class SourceConfig(_Strict):
    agency: str = Field(pattern=r"^[A-Z][A-Z0-9_]{1,15}$")
    name_en: str
    name_ar: str | None = None
    inbox_dir: str
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    fiscal_year_label: Literal["start", "end"] = "end"
    fiscal_calendar: Literal["gregorian", "hijri"] = "gregorian"
    number_locale: Literal["en", "eu"] = "en"
    files: list[FileSpec] = Field(min_length=1)

    def spec_for(self, relative_name: str) -> FileSpec | None:
        """The first file spec whose pattern matches a file name, or None."""
        from fnmatch import fnmatch

        for spec in self.files:
            if fnmatch(relative_name, spec.pattern):
                return spec
        return None


def load_source(path: Path) -> SourceConfig:
    """Load and validate one source YAML; errors name the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SourceConfigError(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SourceConfigError(f"{path}: expected a mapping at the top level")
    try:
        return SourceConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"key '{'.'.join(str(p) for p in err['loc']) or '(top)'}': {err['msg']}" for err in exc.errors()
        )
        raise SourceConfigError(f"{path}: {problems}") from None


def load_sources(directory: Path) -> list[SourceConfig]:
    """All ``*.yaml`` in a directory, sorted by agency; duplicate agencies or inbox folders are an error."""
    configs = [load_source(p) for p in sorted(directory.glob("*.yaml"))]
    seen: dict[str, str] = {}
    for cfg in configs:
        for key in (cfg.agency, f"dir:{cfg.inbox_dir}"):
            if key in seen:
                raise SourceConfigError(f"{directory}: '{key}' is declared twice ({seen[key]} and {cfg.agency})")
            seen[key] = cfg.agency
    return sorted(configs, key=lambda c: c.agency)
