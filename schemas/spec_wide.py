"""The config model of kind years_across_columns: reference workbooks with one column per year, editions."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.spec_base import _check_regex, _Strict
from schemas.spec_table import FileSpec

YEAR_HEADER = r"^(?P<year>\d{4})(\.0+)?$"
#: attribute columns a years-across-columns sheet may carry, besides the entity and the year columns
WIDE_ATTRIBUTES = ("notes", "currency", "fiscal_year_basis", "reporting_year", "omitted_countries")


class ValueColumns(_Strict):
    """Which header cells hold values: a regex whose named group ``year`` gives the year, and what they measure
    (defaults: the sheet's measure, unit and scale)."""

    header: str = YEAR_HEADER
    measure: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$")
    unit: str | None = None
    scale: float | None = Field(default=None, gt=0)
    sheet_groups: bool = Field(
        default=True,
        description="record the sheet's captured groups (e.g. price_base_year) "
        "with these values; false for e.g. a current-prices column",
    )

    @field_validator("header")
    @classmethod
    def _year_group(cls, v: str) -> str:
        return _check_regex(v, ("year",))


class WideSheetSpec(_Strict):
    """One sheet of a years-across-columns workbook: one entity per row, one year per column."""

    sheet: str = Field(
        description="regex matched (whole, case-insensitive) against sheet names; named groups such as "
        "price_base_year are recorded with every value of the sheet"
    )
    entity: Literal["country", "region"] = "country"
    header_label: str = Field(description="text of the header cell above the entity names, e.g. 'Country'")
    max_scan_rows: int = Field(default=40, ge=1, le=500)
    measure: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    unit: str = Field(description="the unit as the sheet states it, e.g. 'US$ m.'")
    scale: float = Field(default=1.0, gt=0, description="multiplier from the stated unit to the base unit")
    base_unit: Literal["USD", "fraction", "local_currency", "count"]
    values: list[ValueColumns] = Field(default_factory=lambda: [ValueColumns()], min_length=1)
    attributes: dict[
        Literal["notes", "currency", "fiscal_year_basis", "reporting_year", "omitted_countries"], list[str]
    ] = Field(default_factory=dict)
    preamble: str | None = Field(
        default=None,
        description="regex searched in the text above the header; named "
        "groups (e.g. price_base_year) are recorded like the sheet's",
    )
    required: bool = True

    @field_validator("sheet", "preamble")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return v if v is None else _check_regex(v)


class EditionSpec(_Strict):
    """How to tell a file's edition: a regex on the file name with named groups, and a label made of them. The
    groups ``first_year`` and ``last_year``, when captured, must be the first and last year the sheets hold values
    for, or the file fails (``edition_mismatch``): the content decides, the name only has to agree."""

    file_name: str
    label: str = Field(description="format string over the regex's named groups, e.g. '{first_year}-{last_year}'")
    published: str | None = Field(
        default=None,
        description="regex with a group 'year', searched in the first sheet's "
        "preamble, e.g. '© SIPRI (?P<year>\\d{4})'",
    )

    @field_validator("file_name")
    @classmethod
    def _regex(cls, v: str) -> str:
        return _check_regex(v)

    @model_validator(mode="after")
    def _label_uses_groups(self) -> EditionSpec:
        import string

        groups = set(re.compile(self.file_name).groupindex)
        used = {name for _, name, _, _ in string.Formatter().parse(self.label) if name}
        if used - groups:
            raise ValueError(f"label uses {sorted(used - groups)}, which the file_name pattern does not capture")
        return self


class FootnoteSheetSpec(_Strict):
    sheet: str = Field(description="regex matched against sheet names")
    required: bool = False


class WideFileSpec(_Strict):
    """A reference workbook with years across the columns (e.g. the SIPRI Military Expenditure Database)."""

    kind: Literal["years_across_columns"]
    pattern: str = Field(description="glob, relative to the source's inbox folder")
    dataset: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    edition: EditionSpec
    missing: list[str] = Field(
        default_factory=lambda: ["...", ". ."], description="cells meaning 'no data' (NULL, never 0)"
    )
    not_existing: list[str] = Field(default_factory=lambda: ["xxx"], description="cells meaning 'did not exist'")
    regions: list[str] = Field(
        default_factory=list,
        description="heading/entity names that are top-level regions; other headings are sub-regions",
    )
    other_entities: list[str] = Field(
        default_factory=list,
        description="entity names that are neither countries nor regions (e.g. 'European Union'); loaded as 'other'",
    )
    footnotes: FootnoteSheetSpec | None = None
    severity: dict[str, Literal["block", "warn"]] = Field(default_factory=dict)
    sheets: list[WideSheetSpec] = Field(min_length=1)

    _severity_known = field_validator("severity")(FileSpec._known_rules.__func__)  # type: ignore[attr-defined]  # pydantic wraps the classmethod; the stub hides __func__

    @property
    def is_csv(self) -> bool:
        return False


# -- long-format tables of any publisher (registers, trackers): kind 'records', columns typed by the YAML ---------------

#: the types a records column may declare
