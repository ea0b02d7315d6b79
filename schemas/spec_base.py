"""What every file kind's config model shares: the kinds, units and stages, the error a wrong YAML raises, and
the small option models (header, FX, row filter)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FileKind(StrEnum):
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
    def _one_way(self) -> HeaderSpec:
        if (self.row is not None) != self.detect:
            return self
        raise ValueError("give either 'row' or 'detect: true', not both and not neither")


class SecretRef(_Strict):
    """Where a secret comes from: an environment variable (``env``) or a Prefect Secret block (``secret``), never the
    YAML itself. Subclasses say what the secret is in ``INLINE`` (the message for a value written inline)."""

    INLINE: ClassVar[str] = "a secret never sits in the YAML"

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable")
    secret: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$", description="Prefect Secret block name")

    @model_validator(mode="before")
    @classmethod
    def _never_inline(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise ValueError(cls.INLINE)
        return value

    @model_validator(mode="after")
    def _one_place(self) -> SecretRef:
        if (self.env is None) == (self.secret is None):
            raise ValueError("give either 'env' or 'secret', not both and not neither")
        return self

    @property
    def setting(self) -> str:
        """The setting to fix, in words (never the secret)."""
        return f"environment variable {self.env}" if self.env else f"Prefect Secret block '{self.secret}'"


class PasswordSpec(SecretRef):
    """Where the password of an agency's encrypted workbooks comes from. flows/passwords.py reads it when a file
    needs it."""

    INLINE: ClassVar[str] = (
        "a password never sits in the YAML: write {env: VARIABLE} (an environment variable holding it) "
        "or {secret: block-name} (a Prefect Secret block)"
    )


class FxSpec(_Strict):
    """Which rate converts a line: the transaction-date rate (bounded look-back) or the fiscal-period average."""

    policy: Literal["transaction_date", "fiscal_period_average"] = "fiscal_period_average"
    by_stage: dict[
        Literal["allocated", "committed", "obligated", "disbursed"],
        Literal["transaction_date", "fiscal_period_average"],
    ] = Field(default_factory=dict)
    lookback_days: int = Field(default=7, ge=0, le=31)


class KeepRows(_Strict):
    """Which rows are in scope: the others are skipped (reason ``filtered``), counted, never silently dropped."""

    column: str = Field(description="a canonical column of the file (mapped or constant)")
    values: list[str] | None = Field(default=None, alias="in", description="keep rows whose cell is one of these")
    matches: str | None = Field(default=None, description="keep rows whose cell matches this regex")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_test(self) -> KeepRows:
        if (self.values is None) == (self.matches is None):
            raise ValueError("give either 'in' (a list of values) or 'matches' (a regex), not both and not neither")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as exc:
                raise ValueError(f"'matches' is not a regular expression: {exc}") from None
        return self


def _check_regex(pattern: str, needs: tuple[str, ...] = ()) -> str:

    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    missing = [g for g in needs if g not in compiled.groupindex]
    if missing:
        raise ValueError(f"the pattern needs the named group(s) {missing}, e.g. (?P<{missing[0]}>\\d{{4}})")
    return pattern
