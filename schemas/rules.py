"""The catalogue of named rules. Every failure a steward sees carries one of these ids."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    severity: str  # "block": the row is quarantined; "warn": the row loads with a flag
    title: str


RULES: dict[str, Rule] = {
    "file_unreadable": Rule("block", "The file cannot be read"),
    "record_malformed": Rule("block", "A CSV record has too few or too many fields, or an unbalanced quote"),
    "file_too_large": Rule(
        "block", "The file exceeds a size limit (bytes, inflated size, rows, columns, cells or cell length)"
    ),
    "header_not_found": Rule("block", "The header row or a required column is missing"),
    "no_source_config": Rule("block", "No source config matches the file name"),
    "required_missing": Rule("block", "A required cell is empty"),
    "amount_not_number": Rule("block", "The amount is not a number"),
    "fiscal_year_unreadable": Rule("block", "The fiscal year label cannot be read"),
    "currency_unknown": Rule("block", "The currency is not an ISO 4217 code (current, or historic for its date)"),
    "currency_withdrawn": Rule("block", "The currency had been withdrawn by the row's date"),
    "fx_rate_missing": Rule("block", "No exchange rate for the currency and year"),
    "country_unknown": Rule("block", "The partner country is not recognised"),
    "category_unmapped": Rule("block", "The category label has no mapping"),
    "stage_unknown": Rule("block", "The funding stage is not recognised"),
    "allocation_negative": Rule("block", "An allocation is negative"),
    "date_unreadable": Rule("block", "The date cannot be read"),
    "date_ambiguous": Rule("block", "The date reads both day-first and month-first and the source declares no order"),
    "date_outside_period": Rule("block", "The date lies outside its fiscal period"),
    "date_out_of_range": Rule("block", "The date lies outside 1677-2262, the range the warehouse can store"),
    "program_code_duplicate": Rule("block", "The program code appears twice in the file"),
    "canonical_contract": Rule("block", "The normalised row breaks the warehouse contract"),
    "totals_mismatch": Rule("warn", "The sheet's totals row does not match the sum of its lines"),
    "value_not_number": Rule("warn", "A value cell is neither a number nor a 'no data' / 'did not exist' mark"),
    "entity_missing": Rule("block", "A row has values but no country or region name"),
    "sheet_missing": Rule("block", "A sheet the source config requires is not in the workbook"),
    "edition_unknown": Rule("block", "The file's edition cannot be told from its name"),
    "edition_duplicate": Rule("block", "Another file already loaded this edition of the dataset"),
    "number_unreadable": Rule("block", "A number cell cannot be read as the number its column declares"),
    "year_unreadable": Rule("block", "A year cell is not a year (or is a range and the source declares no rule)"),
    "value_not_allowed": Rule("block", "A value is not one the source declares allowed (list or pattern)"),
    "value_out_of_range": Rule("block", "A number or year lies outside the declared min and max"),
    "record_duplicate": Rule("block", "The record's key appears on more than one row of the file"),
}


#: rules a source may declare ``warn`` for, per file kind: the row can load with the field NULL (or as read) and the
#: warning recorded. The mapping ones among them wait in mapping_queue and ``dcf replay`` completes the row once
#: mapped. Any other rule leaves no value to load (no amount, no year, no rate), so ``warn`` is refused.
WARNABLE: dict[str, frozenset[str]] = {
    "budget": frozenset(
        {
            "country_unknown",
            "category_unmapped",
            "allocation_negative",
            "totals_mismatch",
            "date_unreadable",
            "date_ambiguous",
            "date_outside_period",
            "date_out_of_range",
        }
    ),
    "programs": frozenset(
        {
            "country_unknown",
            "category_unmapped",
            "date_unreadable",
            "date_ambiguous",
            "date_outside_period",
            "date_out_of_range",
        }
    ),
    "records": frozenset(
        {
            "country_unknown",
            "number_unreadable",
            "year_unreadable",
            "value_not_allowed",
            "value_out_of_range",
            "record_duplicate",
            "date_unreadable",
            "date_ambiguous",
            "date_out_of_range",
        }
    ),
}
#: warned rules whose rows ``dcf replay`` re-normalises once a steward adds the mapping
REPLAYABLE_WARNINGS = frozenset({"country_unknown", "category_unmapped"})


def severity(rule: str) -> str:
    return RULES[rule].severity
