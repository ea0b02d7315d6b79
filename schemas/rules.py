"""The catalogue of named rules. Every failure a steward sees carries one of these ids."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    severity: str  # "block": the row is quarantined; "warn": the row loads with a flag
    title: str


#: the Issues sheet of a steward workbook (warehouse/export.py): its first sheet, this header on its first row; a
#: workbook that starts so is a steward export dropped back, and sheet positions count from the sheet after it
ISSUES_SHEET = "Issues"
ISSUE_COLUMNS = [
    "Record key",
    "Period",
    "What to fix",
    "Message",
    "Field",
    "Value",
    "Suggestion",
    "Row",
    "Cell",
    "Rule",
    "Severity",
    "Status",
    "First seen",
]

#: what a steward does about each rule, one plain sentence (the "What to fix" column of the steward workbook)
FIXES: dict[str, str] = {
    "file_unreadable": "Save the file again from its program (xlsx or CSV) and drop it into the inbox again.",
    "record_malformed": "Put the record back on one line with one value per column, then send the file again.",
    "file_too_large": "Split the file, or ask the operator to raise the limit the message names.",
    "header_not_found": "Restore the column headers the source YAML expects (or add the new header as an alias).",
    "no_source_config": "Rename the file to a pattern its agency's YAML declares, or add the pattern.",
    "required_missing": "Fill in the empty cell.",
    "amount_not_number": "Write the amount as a number (no text, no units in the cell).",
    "amount_out_of_range": "Correct the amount or its unit: no budget line is that large.",
    "text_maybe_utf7": "Save the file again as UTF-8 (Excel: CSV UTF-8) and send it again.",
    "fiscal_year_unreadable": "Write the fiscal year as a year or a label the agency uses (2024, FY2024, 1445).",
    "currency_unknown": "Write a valid ISO currency code (three letters, e.g. SAR, USD, EUR).",
    "currency_withdrawn": "Use the currency that was valid on the row's date, or correct the date.",
    "fx_rate_missing": "Add the rate to reference/fx_rates.csv (currency, dates, units per US$), then dcf replay.",
    "country_unknown": "Correct the country name, or map it in reference/country_aliases.csv, then dcf replay.",
    "category_unmapped": "Map the label in reference/category_mappings.csv (agency, label, code), then dcf replay.",
    "stage_unknown": "Use a known stage (allocated, committed, obligated, disbursed) or map the label in stage_labels.csv.",
    "allocation_negative": "Correct the sign, or record the reduction as its own line the agency's way.",
    "date_unreadable": "Write the date as a date (e.g. 2024-03-01) or in the agency's usual form.",
    "date_ambiguous": "Write the date unambiguously (2024-03-04), or declare date_order in the agency's YAML.",
    "date_outside_period": "Correct the date or the fiscal year so the date falls inside that year.",
    "date_out_of_range": "Correct the date (it lies before 1677 or after 2262).",
    "program_code_duplicate": "Keep one row per program code, or give the second program its own code.",
    "canonical_contract": "Check the row's values against the message; tell the data team if they look right.",
    "totals_mismatch": "Correct the totals row or the lines so that they add up.",
    "control_total_mismatch": "Correct the stated total, or the records of the other dataset it covers.",
    "value_not_number": "Write a number, or the publisher's mark for no data.",
    "entity_missing": "Fill in the country or region name of the row.",
    "sheet_missing": "Restore the sheet the source YAML requires, under its expected name.",
    "edition_unknown": "Rename the file so its name carries the edition (e.g. its year).",
    "edition_duplicate": "Send each edition once: remove the second file, or correct its name.",
    "edition_mismatch": "Check the file is the publisher's edition its name says; restore the publisher's file name.",
    "number_unreadable": "Write the number as a number, as the column declares.",
    "year_unreadable": "Write a single year (or declare how the source's year ranges are read).",
    "value_not_allowed": "Use one of the values the source declares, or correct a typo.",
    "value_out_of_range": "Correct the value; it lies outside the range the source declares.",
    "record_duplicate": "Keep one row per key, or correct the key of the other row.",
}


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
    "amount_out_of_range": Rule(
        "block", "The amount is infinite, or over US$1,000 trillion once scaled by its unit and converted"
    ),
    "text_maybe_utf7": Rule("warn", "A text cell holds UTF-7 sequences (+AOk-): the file was saved in UTF-7"),
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
    "control_total_mismatch": Rule("warn", "A total one dataset states does not match the records of the other"),
    "value_not_number": Rule("warn", "A value cell is neither a number nor a 'no data' / 'did not exist' mark"),
    "entity_missing": Rule("block", "A row has values but no country or region name"),
    "sheet_missing": Rule("block", "A sheet the source config requires is not in the workbook"),
    "edition_unknown": Rule("block", "The file's edition cannot be told from its name"),
    "edition_duplicate": Rule("block", "Another file already loaded this edition of the dataset"),
    "edition_mismatch": Rule("block", "The years the workbook holds are not those of the edition its name says"),
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
