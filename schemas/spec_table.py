"""The config model of the table kinds (budget, programs): one header row, columns by alias, units, totals."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.spec_base import (
    CANONICAL_COLUMNS,
    UNIT_FACTORS,
    FileKind,
    FxSpec,
    HeaderSpec,
    KeepRows,
    PasswordSpec,
    _Strict,
)


class FileSpec(_Strict):
    kind: FileKind
    pattern: str = Field(description="glob, relative to the agency's inbox folder")
    sheet: str | int = 0
    password: PasswordSpec | None = Field(
        default=None, description="encrypted workbooks: where their password comes from ({env: VAR} or {secret: name})"
    )
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
    date_order: Literal["day_first", "month_first"] | None = Field(
        default=None, description="overrides the agency's date_order for these files"
    )
    missing: list[str] = Field(
        default_factory=list, description="cell texts that mean 'no value' (e.g. 'Not given', '.', 'n/a')"
    )
    constants: dict[str, str] = Field(
        default_factory=dict, description="canonical column -> the value every row has (a column the file lacks)"
    )
    keep_rows: KeepRows | None = None
    fiscal_year_from: Literal["transaction_date"] | None = Field(
        default=None, description="derive the fiscal year from this date column where the file states none"
    )
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
    def _warn_only_where_a_row_can_load(self) -> FileSpec:
        from schemas.rules import WARNABLE

        allowed = WARNABLE[self.kind.value]
        refused = sorted(rule for rule, level in self.severity.items() if level == "warn" and rule not in allowed)
        if refused:
            raise ValueError(
                f"severity: {refused} cannot be 'warn' for {self.kind.value} files: a row failing it has no value "
                f"to load; rules that may warn: {sorted(allowed)}"
            )
        return self

    @model_validator(mode="after")
    def _columns_fit_kind(self) -> FileSpec:
        known = CANONICAL_COLUMNS[self.kind]
        unknown = sorted((set(self.columns) | set(self.constants)) - set(known))
        if unknown:
            raise ValueError(f"unknown column(s) {unknown} for kind '{self.kind.value}'; known: {sorted(known)}")
        both = sorted(set(self.columns) & set(self.constants))
        if both:
            raise ValueError(f"column(s) {both} are both read from the file and constant: choose one")
        derived = {"fiscal_year"} if self.fiscal_year_from else set()
        missing = sorted(
            c
            for c, required in known.items()
            if required and c not in self.columns and c not in self.constants and c not in derived
        )
        if missing:
            raise ValueError(f"required column(s) {missing} have no aliases")
        if self.fiscal_year_from and self.fiscal_year_from not in self.columns:
            raise ValueError(f"fiscal_year_from: '{self.fiscal_year_from}' is not a column of these files")
        if self.keep_rows and self.keep_rows.column not in set(self.columns) | set(self.constants):
            raise ValueError(f"keep_rows: '{self.keep_rows.column}' is not a column of these files")
        if self.kind is FileKind.budget:
            if "currency" not in self.columns and "currency" not in self.constants and not self.default_currency:
                raise ValueError("budget files need a 'currency' column or a default_currency")
            if "stage" not in self.columns and "stage" not in self.constants and not self.default_stage:
                raise ValueError("budget files need a 'stage' column or a default_stage")
        return self

    @property
    def unit_factor(self) -> float | None:
        """Scale of the amount cells; None: read it from the amount header's text."""
        return UNIT_FACTORS.get(self.unit)

    @property
    def is_csv(self) -> bool:
        return self.pattern.lower().endswith((".csv", ".txt"))

    @property
    def header_aliases(self) -> dict[str, list[str]]:
        """column -> the header texts it may have (what the reader looks for)."""
        return self.columns

    @property
    def required_columns(self) -> list[str]:
        """Columns whose header must be found for the file to be read."""
        return [c for c, req in CANONICAL_COLUMNS[self.kind].items() if req and c in self.columns]


# -- reference datasets laid out with years across the columns (SIPRI military expenditure and the like) -------------
