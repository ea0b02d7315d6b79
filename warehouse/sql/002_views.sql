-- Views for analysts and stewards (CREATE OR REPLACE: re-applied on every load).

CREATE OR REPLACE VIEW funding_lines AS
WITH lines AS (
    SELECT * FROM fact_funding_line
),
final AS (
    SELECT
        l.agency_code, a.name_en AS agency_name, l.program_code, l.program_name,
        l.country_iso3, c.name_en AS country_name, c.region,
        l.category_code, k.name_en AS category_name, l.category_label,
        l.stage, l.fiscal_year, l.fiscal_year_label, l.period_start, l.period_end, l.transaction_date,
        l.amount_original, l.currency, l.amount_usd, l.fx_rate, l.fx_rate_date, l.fx_provider, l.fx_policy,
        l.amount_usd_constant, l.constant_base_year, l.warning_rules,
        l.file_key, l.sheet, l.excel_row, l.load_id
    FROM lines l
    LEFT JOIN dim_agency a USING (agency_code)
    LEFT JOIN dim_country c ON c.iso3 = l.country_iso3
    LEFT JOIN dim_category k USING (category_code)
)
SELECT * FROM final;

CREATE OR REPLACE VIEW file_reconciliation AS
WITH files AS (
    SELECT * FROM audit_source_file WHERE is_current
),
loaded AS (
    SELECT file_key, count(*) AS n FROM (
        SELECT file_key FROM fact_funding_line UNION ALL SELECT file_key FROM dim_program
        UNION ALL SELECT file_key FROM (SELECT DISTINCT file_key, sheet, excel_row FROM ref_series_value)
        UNION ALL SELECT file_key FROM ref_series_footnote
        UNION ALL SELECT file_key FROM (SELECT DISTINCT file_key, sheet, excel_row FROM record_value)
    ) GROUP BY file_key
),
quarantined AS (SELECT file_key, count(*) AS n FROM quarantine_row GROUP BY file_key),
skipped AS (SELECT file_key, count(*) AS n FROM skipped_row GROUP BY file_key),
final AS (
    SELECT f.file_key, f.status, f.rows_read, f.rows_loaded, f.rows_quarantined, f.rows_skipped,
           coalesce(l.n, 0) AS loaded_in_tables, coalesce(q.n, 0) AS quarantined_in_tables,
           coalesce(s.n, 0) AS skipped_in_tables,
           f.rows_read = coalesce(l.n, 0) + coalesce(q.n, 0) + coalesce(s.n, 0)
             AND f.rows_loaded = coalesce(l.n, 0) AND f.rows_quarantined = coalesce(q.n, 0)
             AND f.rows_skipped = coalesce(s.n, 0) AS reconciles
    FROM files f
    LEFT JOIN loaded l USING (file_key)
    LEFT JOIN quarantined q USING (file_key)
    LEFT JOIN skipped s USING (file_key)
)
SELECT * FROM final;

CREATE OR REPLACE VIEW open_failures AS
SELECT agency_code, file_key, sheet, excel_row, cell, source_column, value, rule, severity, message, suggestion,
       first_seen_at, last_seen_at
FROM audit_validation_failure
WHERE status = 'open'
ORDER BY agency_code, file_key, excel_row NULLS FIRST, column_name;

-- The queue of labels waiting for a steward's mapping: one row per agency and unmapped value, most rows first.
CREATE OR REPLACE VIEW mapping_queue AS
WITH open_mapping_failures AS (
    SELECT * FROM audit_validation_failure
    WHERE status = 'open'
      AND rule IN ('category_unmapped', 'country_unknown', 'currency_unknown', 'fx_rate_missing', 'stage_unknown')
),
final AS (
    SELECT
        CASE rule WHEN 'category_unmapped' THEN 'category' WHEN 'country_unknown' THEN 'country'
                  WHEN 'stage_unknown' THEN 'stage' ELSE 'currency' END AS kind,
        agency_code,
        value AS label,
        count(*) AS rows_waiting,
        count(DISTINCT file_key) AS files,
        any_value(suggestion) AS suggestion,
        CASE rule WHEN 'category_unmapped' THEN 'reference/category_mappings.csv'
                  WHEN 'country_unknown' THEN 'reference/country_aliases.csv'
                  WHEN 'stage_unknown' THEN 'reference/stage_labels.csv'
                  WHEN 'fx_rate_missing' THEN 'reference/fx_rates.csv'
                  ELSE 'the source file (not an ISO 4217 code)' END AS fix_in,
        min(first_seen_at) AS waiting_since
    FROM open_mapping_failures
    GROUP BY ALL
)
SELECT * FROM final ORDER BY rows_waiting DESC, kind, agency_code, label;
