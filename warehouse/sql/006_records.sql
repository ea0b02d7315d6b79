-- Datasets of kind 'records' (tables record_value and record_field are in 001_tables.sql). Each dataset also gets a
-- view records_<dataset>, made from its declaration when one of its files is loaded (warehouse/records.py).
COMMENT ON TABLE record_value IS 'Records of the datasets of kind ''records'' (any long-format table whose columns a source YAML declares with a type): one row per record and field. Read them through the view records_<dataset>, one row per record. A file''s rows are replaced when that file changes.';
COMMENT ON COLUMN record_value.dataset IS 'Dataset id, as the source YAML names it (e.g. transfer_register).';
COMMENT ON COLUMN record_value.file_key IS '<AGENCY>/<file name>: the source file of the record.';
COMMENT ON COLUMN record_value.sheet IS 'Sheet name; empty for a CSV.';
COMMENT ON COLUMN record_value.excel_row IS 'Row of the record in the file as the steward sees it (1-based; a CSV record''s number).';
COMMENT ON COLUMN record_value.field IS 'The field (a declared column, or one it adds such as <money>_usd); record_field describes it.';
COMMENT ON COLUMN record_value.text_value IS 'The value of a text, country (ISO 3166-1 alpha-3) or currency (ISO 4217) field; NULL otherwise or when empty.';
COMMENT ON COLUMN record_value.number_value IS 'The value of an integer, year, decimal or money field, in the unit record_field names; NULL otherwise or when empty.';
COMMENT ON COLUMN record_value.date_value IS 'The value of a date field; NULL otherwise or when empty.';
COMMENT ON COLUMN record_value.file_hash IS 'SHA-256 of the file version the record came from.';
COMMENT ON COLUMN record_value.load_id IS 'The load that wrote the record (audit_load).';

COMMENT ON TABLE record_field IS 'The declaration of each dataset of kind ''records'' as its files were loaded: one row per field of records_<dataset>, in order, with its type and unit.';
COMMENT ON COLUMN record_field.dataset IS 'Dataset id.';
COMMENT ON COLUMN record_field.file_key IS 'The file loaded with this declaration.';
COMMENT ON COLUMN record_field.ordinal IS 'Position of the field in records_<dataset> (1 = first).';
COMMENT ON COLUMN record_field.field IS 'Field name (the column name in records_<dataset>).';
COMMENT ON COLUMN record_field.storage IS 'text, integer, decimal or date: the record_value column holding it and its SQL type in the view (VARCHAR, BIGINT, DOUBLE, DATE).';
COMMENT ON COLUMN record_field.declared_type IS 'The type the source YAML declares: text, integer, decimal, year, date, country, currency or money.';
COMMENT ON COLUMN record_field.unit IS 'What the number measures (e.g. US$, ISO 3166-1 alpha-3); NULL for plain text and dates.';
COMMENT ON COLUMN record_field.description IS 'The source YAML''s description of the field; NULL when it gives none.';
COMMENT ON COLUMN record_field.dataset_description IS 'The source YAML''s description of the dataset; NULL when it gives none.';
COMMENT ON COLUMN record_field.load_id IS 'The load that wrote the declaration.';

-- One row per named dataset (kinds records and years_across_columns): where to read it and how its files fared.
CREATE OR REPLACE VIEW dataset_summary AS
WITH datasets AS (
    SELECT DISTINCT dataset, file_key, 'records' AS kind, 'records_' || dataset AS read_from FROM record_field
    UNION
    SELECT DISTINCT dataset, file_key, 'years_across_columns' AS kind, 'ref_series_value' AS read_from
    FROM ref_series_edition
),
files AS (
    SELECT d.dataset, d.kind, d.read_from, f.*
    FROM datasets d JOIN audit_source_file f ON f.file_key = d.file_key AND f.is_current
),
open_failures AS (
    SELECT d.dataset, count(*) FILTER (WHERE v.severity = 'block') AS open_blocking,
           count(*) FILTER (WHERE v.severity = 'warn') AS open_warnings
    FROM datasets d JOIN audit_validation_failure v ON v.file_key = d.file_key AND v.status = 'open'
    GROUP BY d.dataset
),
final AS (
    SELECT f.dataset, any_value(f.kind) AS kind, any_value(f.read_from) AS read_from,
           string_agg(DISTINCT f.agency_code, ', ' ORDER BY f.agency_code) AS agencies,
           count(*) AS files_current, count(*) FILTER (WHERE f.status = 'failed') AS files_failed,
           CAST(sum(f.rows_read) AS BIGINT) AS rows_read, CAST(sum(f.rows_loaded) AS BIGINT) AS rows_loaded,
           CAST(sum(f.rows_quarantined) AS BIGINT) AS rows_quarantined,
           CAST(sum(f.rows_skipped) AS BIGINT) AS rows_skipped,
           coalesce(any_value(o.open_blocking), 0) AS open_blocking,
           coalesce(any_value(o.open_warnings), 0) AS open_warnings
    FROM files f LEFT JOIN open_failures o USING (dataset)
    GROUP BY f.dataset
)
SELECT * FROM final ORDER BY dataset;
COMMENT ON VIEW dataset_summary IS 'One row per named dataset (source kinds records and years_across_columns): the view or table to read it from, the agencies sending it, its current files and their rows, and its open failures. rows_read = rows_loaded + rows_quarantined + rows_skipped.';
COMMENT ON COLUMN dataset_summary.dataset IS 'Dataset id, as the source YAML names it.';
COMMENT ON COLUMN dataset_summary.kind IS 'records (any long-format table) or years_across_columns (a reference workbook).';
COMMENT ON COLUMN dataset_summary.read_from IS 'Where analysts read it: records_<dataset> (one row per record) or ref_series_value (WHERE dataset = ...).';
COMMENT ON COLUMN dataset_summary.agencies IS 'Agency codes whose files feed it, comma-separated.';
COMMENT ON COLUMN dataset_summary.files_current IS 'Source files whose current version is in the warehouse (count).';
COMMENT ON COLUMN dataset_summary.files_failed IS 'Current files that could not be read or stored (count).';
COMMENT ON COLUMN dataset_summary.rows_read IS 'Rows read from the current files (count).';
COMMENT ON COLUMN dataset_summary.rows_loaded IS 'Rows loaded (count; a reference row counts once however many years it holds).';
COMMENT ON COLUMN dataset_summary.rows_quarantined IS 'Rows held back in quarantine_row (count).';
COMMENT ON COLUMN dataset_summary.rows_skipped IS 'Blank, heading and out-of-scope rows skipped (count).';
COMMENT ON COLUMN dataset_summary.open_blocking IS 'Open failures of severity block in its files (count).';
COMMENT ON COLUMN dataset_summary.open_warnings IS 'Open failures of severity warn in its files (count).';
