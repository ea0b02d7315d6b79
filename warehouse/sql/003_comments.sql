-- The data dictionary, kept in the database: a comment on every table and view, and on every column of every table
-- and of the views in 002_views.sql. Re-applied on every load (COMMENT ON is idempotent); 002 re-creates its views
-- just before this file runs, which drops their comments, so they are set again here. The marts (004_marts.sql) carry
-- their own comments. `python -m warehouse.dictionary` renders all of it as docs/warehouse.md.
-- Units: amount_original in full units of `currency`; amount_usd in nominal US$; amount_usd_constant in constant US$
-- of constant_base_year (US CPI-U); fx_rate in units of `currency` per US$; fiscal_year = calendar year in which the
-- agency's fiscal period ends (ADR 0003). Row numbers are Excel row numbers as the steward sees them (1-based).

-- warehouse/ddl.py apply_ddl creates warehouse_meta after these files run; the same definition here lets it be
-- commented on a fresh database (CREATE TABLE IF NOT EXISTS: whichever runs first creates it, the other is a no-op).
CREATE TABLE IF NOT EXISTS warehouse_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);

-- dim_agency ---------------------------------------------------------------------------------------------------------
COMMENT ON TABLE dim_agency IS 'One row per agency that sends budget files, from its source YAML (sources/<agency>.yaml); replaced whole on every load.';
COMMENT ON COLUMN dim_agency.agency_code IS 'Agency code, upper case (e.g. MOD); key.';
COMMENT ON COLUMN dim_agency.name_en IS 'Agency name in English.';
COMMENT ON COLUMN dim_agency.name_ar IS 'Agency name in Arabic; NULL when the YAML gives none.';
COMMENT ON COLUMN dim_agency.fiscal_year_start_month IS 'Month in which the agency''s fiscal year starts, 1 = January ... 12 = December.';
COMMENT ON COLUMN dim_agency.fiscal_year_label IS 'How a bare year label such as 2024 is read: ''end'' = the year the fiscal year ends in, ''start'' = the year it starts in (ADR 0003).';
COMMENT ON COLUMN dim_agency.number_locale IS 'Number format of the agency''s files: ''en'' = 1,234.5; ''eu'' = 1.234,5.';

-- dim_country --------------------------------------------------------------------------------------------------------
COMMENT ON TABLE dim_country IS 'Every ISO 3166-1 country (pycountry) plus the former states listed in reference/countries.csv and the codes outside ISO it names (XKX Kosovo, YAR North Yemen), with UN M49 region, OIC membership and Arabic name; replaced whole on every load.';
COMMENT ON COLUMN dim_country.iso3 IS 'ISO 3166-1 alpha-3 code (a former state: its ISO 3166-3 alpha-3, e.g. SUN); key.';
COMMENT ON COLUMN dim_country.iso2 IS 'ISO 3166-1 alpha-2 code (a former state: its old alpha-2); NULL for a user-assigned code outside ISO 3166 (reference/countries.csv name_en rows, e.g. XKX Kosovo).';
COMMENT ON COLUMN dim_country.name_en IS 'English name as in ISO 3166 (pycountry).';
COMMENT ON COLUMN dim_country.name_ar IS 'Arabic name: reference/countries.csv first, else the ISO 3166 Arabic translation; NULL when neither has one.';
COMMENT ON COLUMN dim_country.region IS 'UN M49 region (Africa, Americas, Asia, Europe, Oceania); NULL where M49 gives none (Antarctica).';
COMMENT ON COLUMN dim_country.subregion IS 'UN M49 sub-region (e.g. Western Asia).';
COMMENT ON COLUMN dim_country.oic_member IS 'true for a member state of the Organisation of Islamic Cooperation (reference/countries.csv); NULL when the steward table does not say.';
COMMENT ON COLUMN dim_country.is_former IS 'true for a former state (e.g. Soviet Union, Yugoslavia) kept under its own code.';

-- dim_category -------------------------------------------------------------------------------------------------------
COMMENT ON TABLE dim_category IS 'The canonical taxonomy of cooperation categories (reference/categories.csv); agency labels map to it through reference/category_mappings.csv.';
COMMENT ON COLUMN dim_category.category_code IS 'Category code (e.g. TRAINING); key.';
COMMENT ON COLUMN dim_category.name_en IS 'Category name in English.';
COMMENT ON COLUMN dim_category.name_ar IS 'Category name in Arabic.';
COMMENT ON COLUMN dim_category.dac_code IS 'OECD DAC purpose code (5 digits, e.g. 15210) where one corresponds; NULL otherwise.';
COMMENT ON COLUMN dim_category.description IS 'What the category covers, in English.';

-- dim_fiscal_period --------------------------------------------------------------------------------------------------
COMMENT ON TABLE dim_fiscal_period IS 'Each agency''s fiscal years present in fact_funding_line, with their first and last day; rebuilt from the facts on every load.';
COMMENT ON COLUMN dim_fiscal_period.agency_code IS 'Agency (dim_agency).';
COMMENT ON COLUMN dim_fiscal_period.fiscal_year IS 'Canonical fiscal year: calendar year in which the fiscal period ends (ADR 0003).';
COMMENT ON COLUMN dim_fiscal_period.period_start IS 'First day of the fiscal period (inclusive).';
COMMENT ON COLUMN dim_fiscal_period.period_end IS 'Last day of the fiscal period (inclusive).';

-- fact_funding_line --------------------------------------------------------------------------------------------------
COMMENT ON TABLE fact_funding_line IS 'One row per loaded budget line, in the original currency and in nominal and constant US$, with its exchange-rate lineage. Key (file_key, sheet, excel_row) = where the line came from. Stages are steps of the same money (allocated, committed, obligated, disbursed): do not add different stages together.';
COMMENT ON COLUMN fact_funding_line.file_key IS 'Logical source file: <AGENCY>/<path under the agency''s inbox folder> (ADR 0002).';
COMMENT ON COLUMN fact_funding_line.sheet IS 'Worksheet the line was read from; empty string for a CSV file.';
COMMENT ON COLUMN fact_funding_line.excel_row IS 'Excel row number of the line as the steward sees it (1-based; for a CSV, the row Excel shows).';
COMMENT ON COLUMN fact_funding_line.agency_code IS 'Reporting agency (dim_agency).';
COMMENT ON COLUMN fact_funding_line.program_code IS 'Agency''s program code as in the file (e.g. MOD-P012); with agency_code joins dim_program.';
COMMENT ON COLUMN fact_funding_line.program_name IS 'Program name as the file gives it, in the file''s language; NULL when the file has no name column.';
COMMENT ON COLUMN fact_funding_line.country_iso3 IS 'Partner country, ISO 3166-1 alpha-3 (dim_country.iso3); NULL only when the source declares country_unknown: warn and the name waits in mapping_queue (warned_row, dcf replay).';
COMMENT ON COLUMN fact_funding_line.category_code IS 'Canonical category (dim_category); NULL only when the source declares category_unmapped: warn and the label waits in mapping_queue.';
COMMENT ON COLUMN fact_funding_line.category_label IS 'Category label exactly as the agency wrote it, before mapping.';
COMMENT ON COLUMN fact_funding_line.stage IS 'Funding stage: allocated, committed, obligated or disbursed.';
COMMENT ON COLUMN fact_funding_line.fiscal_year IS 'Canonical fiscal year: calendar year in which the agency''s fiscal period ends (ADR 0003).';
COMMENT ON COLUMN fact_funding_line.fiscal_year_label IS 'Fiscal year as the agency labelled it (e.g. FY2024, 2023/24, 1445).';
COMMENT ON COLUMN fact_funding_line.period_start IS 'First day of the line''s fiscal period (inclusive).';
COMMENT ON COLUMN fact_funding_line.period_end IS 'Last day of the line''s fiscal period (inclusive).';
COMMENT ON COLUMN fact_funding_line.transaction_date IS 'Transaction date where the file gives one; NULL otherwise.';
COMMENT ON COLUMN fact_funding_line.amount_original IS 'Amount in full units of `currency` (a file''s thousands or millions multiplied out).';
COMMENT ON COLUMN fact_funding_line.currency IS 'ISO 4217 code of amount_original.';
COMMENT ON COLUMN fact_funding_line.amount_usd IS 'Amount in US dollars, nominal: amount_original / fx_rate.';
COMMENT ON COLUMN fact_funding_line.fx_rate IS 'Exchange rate used: units of `currency` per US$ (1 for USD).';
COMMENT ON COLUMN fact_funding_line.fx_rate_date IS 'Date of the rate used; for a period average, the last day the average covers.';
COMMENT ON COLUMN fact_funding_line.fx_provider IS 'Source of the rate: override (reference/fx_rates.csv), peg, ecb, worldbank, or identity (USD) (ADR 0004).';
COMMENT ON COLUMN fact_funding_line.fx_policy IS 'Rate policy: transaction_date, fiscal_period_average, or ''fiscal_period_average (no transaction date)'' (ADR 0004).';
COMMENT ON COLUMN fact_funding_line.amount_usd_constant IS 'Amount in constant US dollars of constant_base_year (US CPI-U; price year = calendar year holding the middle of the fiscal period; ADR 0005); NULL when that year''s CPI is not yet published.';
COMMENT ON COLUMN fact_funding_line.constant_base_year IS 'Base year of amount_usd_constant (calendar year, from reference/normalization.yaml).';
COMMENT ON COLUMN fact_funding_line.warning_rules IS 'Comma-separated rules that warned (severity warn) on this line; NULL when none.';
COMMENT ON COLUMN fact_funding_line.file_hash IS 'sha256 (hex) of the source file version the line came from.';
COMMENT ON COLUMN fact_funding_line.load_id IS 'Load that stored the line (audit_load.load_id).';

-- dim_program --------------------------------------------------------------------------------------------------------
COMMENT ON TABLE dim_program IS 'One row per loaded record of the agencies'' programs files, as the agency states it; key (file_key, sheet, excel_row). Agencies without a programs file have no rows here.';
COMMENT ON COLUMN dim_program.file_key IS 'Logical source file: <AGENCY>/<path under the agency''s inbox folder> (ADR 0002).';
COMMENT ON COLUMN dim_program.sheet IS 'Worksheet the record was read from; empty string for a CSV file.';
COMMENT ON COLUMN dim_program.excel_row IS 'Excel row number of the record as the steward sees it (1-based).';
COMMENT ON COLUMN dim_program.agency_code IS 'Agency running the program (dim_agency).';
COMMENT ON COLUMN dim_program.program_code IS 'Agency''s program code; with agency_code matches fact_funding_line.program_code.';
COMMENT ON COLUMN dim_program.name_en IS 'Program name in English.';
COMMENT ON COLUMN dim_program.name_ar IS 'Program name in Arabic; NULL when the file gives none.';
COMMENT ON COLUMN dim_program.category_code IS 'Canonical category (dim_category); NULL when the file gives none.';
COMMENT ON COLUMN dim_program.partner_iso3 IS 'Partner countries: sorted list of ISO 3166-1 alpha-3 codes; NULL when the file lists none.';
COMMENT ON COLUMN dim_program.start_date IS 'Program start date as the file states it.';
COMMENT ON COLUMN dim_program.end_date IS 'Program end date as the file states it.';
COMMENT ON COLUMN dim_program.status IS 'Status as the file states it, lower case (e.g. planned, active, completed); not checked against the dates.';
COMMENT ON COLUMN dim_program.warning_rules IS 'Comma-separated rules that warned (severity warn) on this record; NULL when none.';
COMMENT ON COLUMN dim_program.file_hash IS 'sha256 (hex) of the source file version the record came from.';
COMMENT ON COLUMN dim_program.load_id IS 'Load that stored the record (audit_load.load_id).';

-- warned_row ---------------------------------------------------------------------------------------------------------
COMMENT ON TABLE warned_row IS 'Source rows loaded with a declared mapping warning (the country or category NULL until mapped), with their cells as read, so ''dcf replay'' completes them once the mapping exists; the warnings are in audit_validation_failure.';
COMMENT ON COLUMN warned_row.file_key IS 'Logical source file: <AGENCY>/<path under the agency''s inbox folder> (ADR 0002).';
COMMENT ON COLUMN warned_row.sheet IS 'Worksheet the row was read from; empty string for a CSV file.';
COMMENT ON COLUMN warned_row.excel_row IS 'Excel row number as the steward sees it (1-based).';
COMMENT ON COLUMN warned_row.agency_code IS 'Agency that sent the file (dim_agency).';
COMMENT ON COLUMN warned_row.kind IS 'File kind: budget or programs.';
COMMENT ON COLUMN warned_row.raw_json IS 'The row''s cells as read (text, before normalisation), as a JSON object keyed by canonical column.';
COMMENT ON COLUMN warned_row.rules IS 'Comma-separated mapping rules that warned on the row, sorted.';
COMMENT ON COLUMN warned_row.file_hash IS 'sha256 (hex) of the source file version the row came from.';
COMMENT ON COLUMN warned_row.load_id IS 'Load that stored the row (audit_load.load_id).';

-- quarantine_row -----------------------------------------------------------------------------------------------------
COMMENT ON TABLE quarantine_row IS 'Source rows held back by a blocking failure, with their cells as read, so ''dcf replay'' can re-normalise them; the reasons are in audit_validation_failure.';
COMMENT ON COLUMN quarantine_row.file_key IS 'Logical source file: <AGENCY>/<path under the agency''s inbox folder> (ADR 0002).';
COMMENT ON COLUMN quarantine_row.sheet IS 'Worksheet the row was read from; empty string for a CSV file.';
COMMENT ON COLUMN quarantine_row.excel_row IS 'Excel row number as the steward sees it (1-based).';
COMMENT ON COLUMN quarantine_row.agency_code IS 'Agency that sent the file (dim_agency).';
COMMENT ON COLUMN quarantine_row.kind IS 'File kind: budget or programs.';
COMMENT ON COLUMN quarantine_row.raw_json IS 'The row''s cells as read (text, before normalisation), as a JSON object keyed by canonical column.';
COMMENT ON COLUMN quarantine_row.rules IS 'Comma-separated blocking rules that failed on the row, sorted.';
COMMENT ON COLUMN quarantine_row.file_hash IS 'sha256 (hex) of the source file version the row came from.';
COMMENT ON COLUMN quarantine_row.load_id IS 'Load that stored the row (audit_load.load_id).';

-- skipped_row --------------------------------------------------------------------------------------------------------
COMMENT ON TABLE skipped_row IS 'Source rows deliberately not loaded: blank rows and totals rows (with the total the sheet states).';
COMMENT ON COLUMN skipped_row.file_key IS 'Logical source file: <AGENCY>/<path under the agency''s inbox folder> (ADR 0002).';
COMMENT ON COLUMN skipped_row.sheet IS 'Worksheet the row was read from; empty string for a CSV file.';
COMMENT ON COLUMN skipped_row.excel_row IS 'Excel row number as the steward sees it (1-based).';
COMMENT ON COLUMN skipped_row.reason IS 'Why the row was skipped: blank (no value in any mapped cell), total (a totals row), filtered (out of the source''s keep_rows scope; label names the cell), region_heading / subregion_heading (a reference sheet''s heading row between entities, e.g. Middle East) or heading (a title row of a footnotes sheet).';
COMMENT ON COLUMN skipped_row.label IS 'Label of a totals row as written (e.g. Total); NULL for a blank row.';
COMMENT ON COLUMN skipped_row.stated_amount IS 'Total stated on a totals row, in full units (the file''s thousands or millions multiplied out; currency as the file''s lines, which may mix currencies); NULL for a blank row.';
COMMENT ON COLUMN skipped_row.file_hash IS 'sha256 (hex) of the source file version the row came from.';
COMMENT ON COLUMN skipped_row.load_id IS 'Load that stored the row (audit_load.load_id).';

-- audit_load ---------------------------------------------------------------------------------------------------------
COMMENT ON TABLE audit_refused_entry IS 'Inbox entries a load saw but never read, with the reason: links that leave the inbox or point nowhere, FIFOs, sockets, devices, folders that cannot be listed. Nothing of them is stored or exported.';
COMMENT ON COLUMN audit_refused_entry.load_id IS 'Load that saw the entry (audit_load.load_id).';
COMMENT ON COLUMN audit_refused_entry.entry IS 'The entry as <AGENCY>/<name in the agency folder>, control characters and bytes that are not UTF-8 shown as escapes.';
COMMENT ON COLUMN audit_refused_entry.agency_code IS 'Agency whose inbox folder holds the entry.';
COMMENT ON COLUMN audit_refused_entry.reason IS 'Why it was not read, in words (e.g. a link to a file outside the inbox).';
COMMENT ON COLUMN audit_refused_entry.seen_at IS 'When the load saw it.';
COMMENT ON TABLE audit_load IS 'One row per ingestion run or replay, with its outcome and the row counts of the files it processed.';
COMMENT ON COLUMN audit_load.load_id IS 'Load id: start time as YYYYMMDDTHHMMSS, a random suffix, and -replay for a replay; key.';
COMMENT ON COLUMN audit_load.started_at IS 'When the run started (local time of the machine that ran it).';
COMMENT ON COLUMN audit_load.finished_at IS 'When the run recorded its result, just before publishing (local time).';
COMMENT ON COLUMN audit_load.flow_run_id IS 'Prefect flow run id; NULL when run outside Prefect.';
COMMENT ON COLUMN audit_load.run_by IS 'Operating-system user that ran the load.';
COMMENT ON COLUMN audit_load.inbox IS 'Inbox folder the run read; ''(replay)'' for a replay.';
COMMENT ON COLUMN audit_load.outcome IS 'success; partial (published, but at least one file could not be read); nothing_new (no new or changed file); replay.';
COMMENT ON COLUMN audit_load.files_seen IS 'Files found in the inbox (count).';
COMMENT ON COLUMN audit_load.files_processed IS 'Files read and stored by this run: new or changed versions (count).';
COMMENT ON COLUMN audit_load.files_unchanged IS 'Files skipped because the same version was already current (count).';
COMMENT ON COLUMN audit_load.files_failed IS 'Processed files that could not be read or stored (count).';
COMMENT ON COLUMN audit_load.rows_read IS 'Data rows read from the processed files (count); = rows_loaded + rows_quarantined + rows_skipped.';
COMMENT ON COLUMN audit_load.rows_loaded IS 'Rows loaded into fact_funding_line or dim_program (count).';
COMMENT ON COLUMN audit_load.rows_quarantined IS 'Rows held back in quarantine_row (count).';
COMMENT ON COLUMN audit_load.rows_skipped IS 'Blank and totals rows skipped (count).';
COMMENT ON COLUMN audit_load.load_seq IS 'Publish sequence of the warehouse version this load produced (the number of its file in <warehouse>.versions/); increases with every publish, whatever the clock says.';
COMMENT ON COLUMN audit_load.files_withdrawn IS 'Current files missing from the inbox at this load (count); their rows are kept or retracted as the source declares (withdrawn: keep|retract).';

-- audit_source_file --------------------------------------------------------------------------------------------------
COMMENT ON TABLE audit_source_file IS 'One row per version of each source file (file_key, file_hash, config_hash): how it was read and its row counts; is_current marks the version whose rows are in the warehouse. rows_read = rows_loaded + rows_quarantined + rows_skipped.';
COMMENT ON COLUMN audit_source_file.file_key IS 'Logical source file: <AGENCY>/<path under the agency''s inbox folder> (ADR 0002).';
COMMENT ON COLUMN audit_source_file.file_hash IS 'sha256 (hex) of the file''s bytes: the version.';
COMMENT ON COLUMN audit_source_file.config_hash IS 'Configuration fingerprint: first 16 hex digits of the sha256 of the agency''s source YAML, the reference tables and the pipeline version (ADR 0002).';
COMMENT ON COLUMN audit_source_file.agency_code IS 'Agency that sent the file (dim_agency).';
COMMENT ON COLUMN audit_source_file.kind IS 'File kind from the source YAML: budget or programs; NULL when no file spec matched.';
COMMENT ON COLUMN audit_source_file.path IS 'Path of the file when it was read.';
COMMENT ON COLUMN audit_source_file.size_bytes IS 'File size in bytes.';
COMMENT ON COLUMN audit_source_file.modified_at IS 'File modification time when it was read (local time).';
COMMENT ON COLUMN audit_source_file.first_seen_at IS 'When this version (file_hash) was first loaded (local time).';
COMMENT ON COLUMN audit_source_file.load_id IS 'Load that last processed this version (audit_load.load_id).';
COMMENT ON COLUMN audit_source_file.is_current IS 'true for the version whose rows are in the warehouse (one per file_key).';
COMMENT ON COLUMN audit_source_file.status IS 'loaded, or failed (the file could not be read or stored; see message).';
COMMENT ON COLUMN audit_source_file.sheet IS 'Worksheet read; empty string for a CSV file or a file that could not be read.';
COMMENT ON COLUMN audit_source_file.header_row IS 'Excel row number of the header row (1-based); NULL when not found.';
COMMENT ON COLUMN audit_source_file.rows_read IS 'Rows read below the header (count).';
COMMENT ON COLUMN audit_source_file.rows_loaded IS 'Rows loaded into fact_funding_line or dim_program (count).';
COMMENT ON COLUMN audit_source_file.rows_quarantined IS 'Rows held back in quarantine_row (count).';
COMMENT ON COLUMN audit_source_file.rows_skipped IS 'Blank and totals rows in skipped_row (count).';
COMMENT ON COLUMN audit_source_file.message IS 'Why the file failed, in plain words; NULL when loaded.';
COMMENT ON COLUMN audit_source_file.context_json IS 'How the file was read and normalised (JSON), used by ''dcf replay''.';
COMMENT ON COLUMN audit_source_file.archive_path IS 'Where the received bytes are kept in the raw archive (content-addressed by file_hash), so re-processing never needs the inbox; NULL when the file could not be read.';
COMMENT ON COLUMN audit_source_file.withdrawn_at IS 'When the file was first found missing from the inbox (local time); NULL while it is there. A withdrawn file''s rows stay (withdrawn: keep) or are removed and is_current set false (withdrawn: retract).';

-- audit_validation_failure -------------------------------------------------------------------------------------------
COMMENT ON TABLE audit_validation_failure IS 'Every validation failure, located to the cell and explained in plain words; open until a later version of the file no longer has it.';
COMMENT ON COLUMN audit_validation_failure.failure_id IS 'Stable id: md5 of file, sheet, row, column, rule and value (ADR 0002); key.';
COMMENT ON COLUMN audit_validation_failure.file_key IS 'Logical source file: <AGENCY>/<path under the agency''s inbox folder> (ADR 0002).';
COMMENT ON COLUMN audit_validation_failure.file_hash IS 'sha256 (hex) of the file version in which the failure was last seen.';
COMMENT ON COLUMN audit_validation_failure.agency_code IS 'Agency that sent the file (dim_agency).';
COMMENT ON COLUMN audit_validation_failure.sheet IS 'Worksheet; empty string for a CSV file.';
COMMENT ON COLUMN audit_validation_failure.excel_row IS 'Excel row number as the steward sees it (1-based); NULL for a failure of the whole file.';
COMMENT ON COLUMN audit_validation_failure.cell IS 'Cell address in A1 notation (e.g. F37); NULL when the failure is not about one cell.';
COMMENT ON COLUMN audit_validation_failure.column_name IS 'Canonical column the failure is about (e.g. amount).';
COMMENT ON COLUMN audit_validation_failure.source_column IS 'Column header as the agency''s file names it.';
COMMENT ON COLUMN audit_validation_failure.value IS 'The offending cell value as read (text); NULL for an empty cell.';
COMMENT ON COLUMN audit_validation_failure.rule IS 'Rule id from the rule catalogue (schemas/rules.py), e.g. country_unknown.';
COMMENT ON COLUMN audit_validation_failure.severity IS 'block (the row is quarantined) or warn (the row loads with warning_rules set).';
COMMENT ON COLUMN audit_validation_failure.message IS 'What is wrong, in plain words for a steward.';
COMMENT ON COLUMN audit_validation_failure.suggestion IS 'Suggested fix (e.g. a close-match label); NULL when none.';
COMMENT ON COLUMN audit_validation_failure.status IS 'open, or resolved (no longer occurs in the latest version of the file).';
COMMENT ON COLUMN audit_validation_failure.first_seen_load IS 'Load that first saw the failure (audit_load.load_id).';
COMMENT ON COLUMN audit_validation_failure.last_seen_load IS 'Load that last saw the failure (audit_load.load_id).';
COMMENT ON COLUMN audit_validation_failure.first_seen_at IS 'When the failure was first seen (local time).';
COMMENT ON COLUMN audit_validation_failure.last_seen_at IS 'When the failure was last seen (local time).';
COMMENT ON COLUMN audit_validation_failure.resolved_at IS 'When the failure was resolved (local time); NULL while open.';

-- fx_rate_lock -------------------------------------------------------------------------------------------------------
COMMENT ON TABLE fx_rate_lock IS 'Exchange rates frozen for closed fiscal years (period ended before the load): later runs use them first, so closed years'' US$ figures do not move; ''dcf rerate'' releases a year (ADR 0004).';
COMMENT ON COLUMN fx_rate_lock.currency IS 'ISO 4217 currency code.';
COMMENT ON COLUMN fx_rate_lock.policy IS 'Rate policy the rate serves: transaction_date or fiscal_period_average.';
COMMENT ON COLUMN fx_rate_lock.key_start IS 'transaction_date policy: the transaction date; fiscal_period_average: first day of the fiscal period.';
COMMENT ON COLUMN fx_rate_lock.key_end IS 'transaction_date policy: the transaction date; fiscal_period_average: last day of the fiscal period.';
COMMENT ON COLUMN fx_rate_lock.fiscal_year IS 'Canonical fiscal year of the lines that used the rate (ADR 0003).';
COMMENT ON COLUMN fx_rate_lock.units_per_usd IS 'The frozen rate: units of `currency` per US$.';
COMMENT ON COLUMN fx_rate_lock.rate_date IS 'Date of the rate; for a period average, the last day the average covers.';
COMMENT ON COLUMN fx_rate_lock.provider IS 'Provider that first gave the rate (override, peg, ecb, worldbank).';
COMMENT ON COLUMN fx_rate_lock.locked_at IS 'When the rate was frozen (local time).';
COMMENT ON COLUMN fx_rate_lock.load_id IS 'Load that froze the rate (audit_load.load_id).';

-- audit_failure_count ------------------------------------------------------------------------------------------------
COMMENT ON TABLE audit_failure_count IS 'Validation history: how many failures each load saw, per agency, rule and severity, in the files that load processed.';
COMMENT ON COLUMN audit_failure_count.load_id IS 'Load (audit_load.load_id).';
COMMENT ON COLUMN audit_failure_count.agency_code IS 'Agency (dim_agency).';
COMMENT ON COLUMN audit_failure_count.rule IS 'Rule id from the rule catalogue (schemas/rules.py).';
COMMENT ON COLUMN audit_failure_count.severity IS 'block or warn.';
COMMENT ON COLUMN audit_failure_count.failures IS 'Failures seen by that load (count).';

-- warehouse_meta -----------------------------------------------------------------------------------------------------
COMMENT ON TABLE warehouse_meta IS 'Facts about the warehouse file itself, as key/value pairs.';
COMMENT ON COLUMN warehouse_meta.key IS 'Name of the fact; schema_version = layout version of the tables (warehouse/ddl.py SCHEMA_VERSION); publish_seq = the version this file is; restricted_agencies = the agencies (JSON list) whose rows the analyst edition leaves out (full warehouse only, absent when none); edition = what an analyst edition holds (analyst edition only); key.';
COMMENT ON COLUMN warehouse_meta.value IS 'Value of the fact, as text.';

-- Views of 002_views.sql ----------------------------------------------------------------------------------------------
COMMENT ON VIEW funding_lines IS 'Every loaded budget line (fact_funding_line) with agency, country and category names. Units as in fact_funding_line; stages are steps of the same money: filter on stage before adding amounts up.';
COMMENT ON COLUMN funding_lines.agency_code IS 'Reporting agency (dim_agency).';
COMMENT ON COLUMN funding_lines.agency_name IS 'Agency name in English.';
COMMENT ON COLUMN funding_lines.program_code IS 'Agency''s program code as in the file.';
COMMENT ON COLUMN funding_lines.program_name IS 'Program name as the file gives it, in the file''s language; NULL when the file has none.';
COMMENT ON COLUMN funding_lines.country_iso3 IS 'Partner country, ISO 3166-1 alpha-3.';
COMMENT ON COLUMN funding_lines.country_name IS 'Partner country name in English (ISO 3166).';
COMMENT ON COLUMN funding_lines.region IS 'Partner''s UN M49 region.';
COMMENT ON COLUMN funding_lines.category_code IS 'Canonical category (dim_category).';
COMMENT ON COLUMN funding_lines.category_name IS 'Canonical category name in English.';
COMMENT ON COLUMN funding_lines.category_label IS 'Category label exactly as the agency wrote it.';
COMMENT ON COLUMN funding_lines.stage IS 'Funding stage: allocated, committed, obligated or disbursed.';
COMMENT ON COLUMN funding_lines.fiscal_year IS 'Canonical fiscal year: calendar year in which the fiscal period ends (ADR 0003).';
COMMENT ON COLUMN funding_lines.fiscal_year_label IS 'Fiscal year as the agency labelled it.';
COMMENT ON COLUMN funding_lines.period_start IS 'First day of the fiscal period (inclusive).';
COMMENT ON COLUMN funding_lines.period_end IS 'Last day of the fiscal period (inclusive).';
COMMENT ON COLUMN funding_lines.transaction_date IS 'Transaction date where the file gives one.';
COMMENT ON COLUMN funding_lines.amount_original IS 'Amount in full units of `currency`.';
COMMENT ON COLUMN funding_lines.currency IS 'ISO 4217 code of amount_original.';
COMMENT ON COLUMN funding_lines.amount_usd IS 'Amount in US dollars, nominal.';
COMMENT ON COLUMN funding_lines.fx_rate IS 'Exchange rate used: units of `currency` per US$.';
COMMENT ON COLUMN funding_lines.fx_rate_date IS 'Date of the rate used; for a period average, the last day it covers.';
COMMENT ON COLUMN funding_lines.fx_provider IS 'Source of the rate (override, peg, ecb, worldbank, identity).';
COMMENT ON COLUMN funding_lines.fx_policy IS 'Rate policy (transaction_date or fiscal_period_average).';
COMMENT ON COLUMN funding_lines.amount_usd_constant IS 'Amount in constant US dollars of constant_base_year (US CPI-U); NULL when the price year has no CPI yet.';
COMMENT ON COLUMN funding_lines.constant_base_year IS 'Base year of amount_usd_constant.';
COMMENT ON COLUMN funding_lines.warning_rules IS 'Comma-separated rules that warned on the line; NULL when none.';
COMMENT ON COLUMN funding_lines.file_key IS 'Logical source file (ADR 0002).';
COMMENT ON COLUMN funding_lines.sheet IS 'Worksheet; empty string for a CSV file.';
COMMENT ON COLUMN funding_lines.excel_row IS 'Excel row number as the steward sees it (1-based).';
COMMENT ON COLUMN funding_lines.load_id IS 'Load that stored the line (audit_load.load_id).';

COMMENT ON VIEW file_reconciliation IS 'Per current source file: do the counts in audit_source_file match the rows in the tables? Checked before every publish.';
COMMENT ON COLUMN file_reconciliation.file_key IS 'Logical source file (ADR 0002).';
COMMENT ON COLUMN file_reconciliation.status IS 'loaded or failed.';
COMMENT ON COLUMN file_reconciliation.rows_read IS 'Rows read, as recorded in audit_source_file (count).';
COMMENT ON COLUMN file_reconciliation.rows_loaded IS 'Rows loaded, as recorded (count).';
COMMENT ON COLUMN file_reconciliation.rows_quarantined IS 'Rows quarantined, as recorded (count).';
COMMENT ON COLUMN file_reconciliation.rows_skipped IS 'Rows skipped, as recorded (count).';
COMMENT ON COLUMN file_reconciliation.loaded_in_tables IS 'Rows of the file in fact_funding_line and dim_program (count).';
COMMENT ON COLUMN file_reconciliation.quarantined_in_tables IS 'Rows of the file in quarantine_row (count).';
COMMENT ON COLUMN file_reconciliation.skipped_in_tables IS 'Rows of the file in skipped_row (count).';
COMMENT ON COLUMN file_reconciliation.reconciles IS 'true when every recorded count equals the rows in the tables.';

COMMENT ON VIEW open_failures IS 'The open validation failures (audit_validation_failure with status open), in file and row order.';
COMMENT ON COLUMN open_failures.agency_code IS 'Agency that sent the file.';
COMMENT ON COLUMN open_failures.file_key IS 'Logical source file (ADR 0002).';
COMMENT ON COLUMN open_failures.sheet IS 'Worksheet; empty string for a CSV file.';
COMMENT ON COLUMN open_failures.excel_row IS 'Excel row number as the steward sees it (1-based); NULL for a whole-file failure.';
COMMENT ON COLUMN open_failures.cell IS 'Cell address in A1 notation (e.g. F37).';
COMMENT ON COLUMN open_failures.source_column IS 'Column header as the agency''s file names it.';
COMMENT ON COLUMN open_failures.value IS 'The offending cell value as read (text).';
COMMENT ON COLUMN open_failures.rule IS 'Rule id (schemas/rules.py).';
COMMENT ON COLUMN open_failures.severity IS 'block or warn.';
COMMENT ON COLUMN open_failures.message IS 'What is wrong, in plain words.';
COMMENT ON COLUMN open_failures.suggestion IS 'Suggested fix; NULL when none.';
COMMENT ON COLUMN open_failures.first_seen_at IS 'When the failure was first seen (local time).';
COMMENT ON COLUMN open_failures.last_seen_at IS 'When the failure was last seen (local time).';

COMMENT ON VIEW mapping_queue IS 'Labels waiting for a steward''s mapping: one row per kind, agency and unmapped value, most rows waiting first.';
COMMENT ON COLUMN mapping_queue.kind IS 'What is unmapped: category, country, stage or currency.';
COMMENT ON COLUMN mapping_queue.agency_code IS 'Agency whose files use the label.';
COMMENT ON COLUMN mapping_queue.label IS 'The unmapped value as written in the files.';
COMMENT ON COLUMN mapping_queue.rows_waiting IS 'Open failures with this label (count).';
COMMENT ON COLUMN mapping_queue.files IS 'Files in which the label occurs (count).';
COMMENT ON COLUMN mapping_queue.suggestion IS 'A close-match suggestion; NULL when none.';
COMMENT ON COLUMN mapping_queue.fix_in IS 'Where to add the mapping (a reference table, or the source file).';
COMMENT ON COLUMN mapping_queue.waiting_since IS 'When the label was first seen (local time).';
