-- Reference datasets loaded from workbooks with the years across the columns (source kind years_across_columns),
-- e.g. the SIPRI Military Expenditure Database (sources/sipri.yaml). One row per entity x year x measure, as the
-- edition published it; editions stay side by side. Views for the analysts follow, then their comments.
-- Units: `value` in the sheet's stated `unit` (e.g. US$ m.); `value_base` in the base unit (USD, fraction, local
-- currency); a 'no data' mark ('...') is status 'missing' with value NULL, never 0; 'xxx' is status 'not_existing'.

-- (the tables ref_series_value, ref_series_footnote, ref_series_edition are in 001_tables.sql)

-- The newest edition of each dataset: the latest last year of data, then the latest publication, then load.
CREATE OR REPLACE VIEW ref_series_latest_edition AS
WITH ranked AS (
    SELECT dataset, edition, file_key, published_year, first_year, last_year, price_base_year,
           row_number() OVER (PARTITION BY dataset
                              ORDER BY last_year DESC NULLS LAST, published_year DESC NULLS LAST, loaded_at DESC) AS rank
    FROM ref_series_edition
)
SELECT dataset, edition, file_key, published_year, first_year, last_year, price_base_year
FROM ranked WHERE rank = 1;

-- Military expenditure per country and year, newest SIPRI edition, one column per measure (countries only; the
-- regions are in milex_region_year; entity_type 'other', e.g. the European Union, is left out).
CREATE OR REPLACE VIEW milex_country_year AS
WITH latest AS (
    SELECT edition FROM ref_series_latest_edition WHERE dataset = 'sipri_milex'
),
values_ AS (
    SELECT v.* FROM ref_series_value v JOIN latest USING (edition)
    WHERE v.dataset = 'sipri_milex' AND v.entity_type = 'country'
),
pivoted AS (
    SELECT
        country_iso3, any_value(entity_name) AS sipri_name, any_value(region) AS sipri_region,
        any_value(subregion) AS sipri_subregion, year, any_value(edition) AS edition,
        max(value_base) FILTER (WHERE measure = 'milex_current_usd') AS milex_current_usd,
        max(value_base) FILTER (WHERE measure = 'milex_constant_usd') AS milex_constant_usd,
        max(price_base_year) FILTER (WHERE measure = 'milex_constant_usd') AS constant_price_base_year,
        max(value_base) FILTER (WHERE measure = 'milex_share_of_gdp') AS share_of_gdp,
        max(value_base) FILTER (WHERE measure = 'milex_per_capita_usd') AS per_capita_usd,
        max(value_base) FILTER (WHERE measure = 'milex_share_of_govt_spending') AS share_of_govt_spending,
        max(value_base) FILTER (WHERE measure = 'milex_local_currency_calendar_year') AS local_currency_calendar_year,
        any_value(currency) FILTER (WHERE measure = 'milex_local_currency_calendar_year') AS local_currency,
        any_value(status) FILTER (WHERE measure = 'milex_current_usd') AS current_usd_status,
        any_value(notes) AS notes
    FROM values_
    GROUP BY country_iso3, entity_name, year
)
SELECT * FROM pivoted;

CREATE OR REPLACE VIEW milex_region_year AS
WITH latest AS (
    SELECT edition FROM ref_series_latest_edition WHERE dataset = 'sipri_milex'
),
final AS (
    SELECT v.entity_name AS region_name, v.region AS parent_region, v.year, v.edition,
           max(v.value_base) FILTER (WHERE v.measure = 'milex_constant_usd') AS milex_constant_usd,
           max(v.price_base_year) FILTER (WHERE v.measure = 'milex_constant_usd') AS constant_price_base_year,
           max(v.value_base) FILTER (WHERE v.measure = 'milex_current_usd') AS milex_current_usd,
           any_value(v.omitted_countries) AS omitted_countries
    FROM ref_series_value v JOIN latest USING (edition)
    WHERE v.dataset = 'sipri_milex' AND v.entity_type = 'region'
    GROUP BY v.entity_name, v.region, v.year, v.edition
)
SELECT * FROM final;

-- What changed between consecutive editions of a dataset: same measure, unit and price base, same entity and year.
CREATE OR REPLACE VIEW ref_series_revisions AS
WITH editions AS (
    SELECT dataset, edition,
           lag(edition) OVER (PARTITION BY dataset ORDER BY last_year NULLS FIRST, published_year NULLS FIRST, loaded_at) AS previous_edition
    FROM ref_series_edition
),
pairs AS (
    SELECT
        n.dataset, n.measure, n.unit, n.price_base_year, n.entity_type, n.entity_name, n.country_iso3, n.year,
        e.previous_edition, n.edition,
        o.value AS previous_value, n.value, o.status AS previous_status, n.status,
        n.value - o.value AS change,
        CASE WHEN o.value <> 0 THEN (n.value - o.value) / abs(o.value) END AS relative_change
    FROM ref_series_value n
    JOIN editions e ON e.dataset = n.dataset AND e.edition = n.edition
    JOIN ref_series_value o
      ON o.dataset = n.dataset AND o.edition = e.previous_edition AND o.measure = n.measure AND o.unit = n.unit
     AND o.price_base_year IS NOT DISTINCT FROM n.price_base_year AND o.entity_name = n.entity_name
     AND o.entity_type = n.entity_type AND o.year = n.year AND o.sheet = n.sheet
)
SELECT * FROM pairs
WHERE status <> previous_status OR value IS DISTINCT FROM previous_value;

-- Cooperation funding beside each partner's own military expenditure (SIPRI, newest edition, current US$).
CREATE OR REPLACE VIEW mart_partner_funding_vs_milex AS
WITH funding AS (
    SELECT partner_iso3, partner_name, fiscal_year, allocated_usd, disbursed_usd
    FROM mart_funding_by_partner_year
),
milex AS (
    SELECT country_iso3, year, edition, milex_current_usd, current_usd_status, share_of_gdp
    FROM milex_country_year
),
final AS (
    SELECT
        f.partner_iso3, f.partner_name, f.fiscal_year, f.allocated_usd, f.disbursed_usd,
        m.milex_current_usd, m.current_usd_status AS milex_status, m.share_of_gdp AS milex_share_of_gdp,
        CASE WHEN m.milex_current_usd > 0 THEN f.allocated_usd / m.milex_current_usd END AS allocated_share_of_milex,
        CASE WHEN m.milex_current_usd > 0 THEN f.disbursed_usd / m.milex_current_usd END AS disbursed_share_of_milex,
        m.edition AS sipri_edition
    FROM funding f
    LEFT JOIN milex m ON m.country_iso3 = f.partner_iso3 AND m.year = f.fiscal_year
)
SELECT * FROM final;

COMMENT ON TABLE ref_series_value IS 'Reference series from years-across-columns workbooks (source kind years_across_columns, e.g. SIPRI military expenditure): one row per entity x year x measure as the edition published it. Editions stay side by side; a file''s rows are replaced when that file changes.';
COMMENT ON COLUMN ref_series_value.dataset IS 'Dataset id from the source YAML (e.g. sipri_milex).';
COMMENT ON COLUMN ref_series_value.edition IS 'Edition label made from the file name by the source YAML (SIPRI: first-last year of data, e.g. 1949-2022).';
COMMENT ON COLUMN ref_series_value.measure IS 'What the value measures (e.g. milex_current_usd, milex_share_of_gdp); one per sheet or value column.';
COMMENT ON COLUMN ref_series_value.unit IS 'Unit as the sheet states it (e.g. US$ m., US$ bn, fraction of GDP).';
COMMENT ON COLUMN ref_series_value.base_unit IS 'Unit of value_base: USD, fraction (0.05 = 5 %), local_currency or count.';
COMMENT ON COLUMN ref_series_value.entity_type IS 'country, region (a regional total; sub-regions included) or other (e.g. European Union).';
COMMENT ON COLUMN ref_series_value.entity_name IS 'Name as the publisher spells it (e.g. Korea, South).';
COMMENT ON COLUMN ref_series_value.country_iso3 IS 'ISO 3166-1 alpha-3 of a country row (former states: ISO 3166-3 or a user-assigned code such as XKX, YAR); NULL for regions, others and unknown names.';
COMMENT ON COLUMN ref_series_value.region IS 'The publisher''s region heading above the row (e.g. Middle East).';
COMMENT ON COLUMN ref_series_value.subregion IS 'The publisher''s sub-region heading above the row (e.g. North Africa); NULL where none.';
COMMENT ON COLUMN ref_series_value.year IS 'Calendar year of the column (financial-year sheets: the year the financial year starts).';
COMMENT ON COLUMN ref_series_value.value IS 'The number in the sheet''s unit; NULL unless status = value.';
COMMENT ON COLUMN ref_series_value.value_base IS 'value x the sheet''s scale, in base_unit (e.g. US$ m. -> US$); NULL unless status = value.';
COMMENT ON COLUMN ref_series_value.status IS 'value; missing (the no-data mark, e.g. ...); not_existing (xxx: the country did not exist); empty (blank cell); invalid (anything else, see open_failures).';
COMMENT ON COLUMN ref_series_value.raw_value IS 'The cell as text, exactly as read.';
COMMENT ON COLUMN ref_series_value.price_base_year IS 'Base year of constant prices (e.g. 2021 for Constant (2021) US$); NULL for current prices.';
COMMENT ON COLUMN ref_series_value.notes IS 'The row''s Notes cell as published: footnote symbols and numbers.';
COMMENT ON COLUMN ref_series_value.footnote_symbols IS 'The symbols in notes (e.g. §‖); their meaning is in ref_series_footnote.';
COMMENT ON COLUMN ref_series_value.footnote_numbers IS 'The footnote numbers in notes (e.g. [16]); texts in ref_series_footnote (mark = the number).';
COMMENT ON COLUMN ref_series_value.currency IS 'Local currency name as published (local-currency sheets), e.g. Riyals.';
COMMENT ON COLUMN ref_series_value.fiscal_year_basis IS 'The financial year the country reports in, as published (financial-year sheet).';
COMMENT ON COLUMN ref_series_value.reporting_year IS 'Reporting-year note as published (share of government spending sheet).';
COMMENT ON COLUMN ref_series_value.omitted_countries IS 'Countries left out of a regional total, as published.';
COMMENT ON COLUMN ref_series_value.file_key IS 'Logical source file (<SOURCE>/<name>); joins audit_source_file.';
COMMENT ON COLUMN ref_series_value.sheet IS 'Worksheet the value came from.';
COMMENT ON COLUMN ref_series_value.excel_row IS 'Excel row number of the entity row (1-based).';
COMMENT ON COLUMN ref_series_value.cell IS 'A1 address of the value cell.';
COMMENT ON COLUMN ref_series_value.file_hash IS 'sha256 of the file version loaded.';
COMMENT ON COLUMN ref_series_value.load_id IS 'Load that wrote the row (audit_load).';

COMMENT ON TABLE ref_series_footnote IS 'Footnotes and special notes of a reference edition (SIPRI Footnotes sheet): mark -> text.';
COMMENT ON COLUMN ref_series_footnote.dataset IS 'Dataset id (e.g. sipri_milex).';
COMMENT ON COLUMN ref_series_footnote.edition IS 'Edition label.';
COMMENT ON COLUMN ref_series_footnote.mark IS 'The footnote number or symbol (e.g. 16, §, ‖); a note without a mark is keyed ''row N''.';
COMMENT ON COLUMN ref_series_footnote.text IS 'The note as published.';
COMMENT ON COLUMN ref_series_footnote.file_key IS 'Logical source file.';
COMMENT ON COLUMN ref_series_footnote.sheet IS 'Worksheet of the note.';
COMMENT ON COLUMN ref_series_footnote.excel_row IS 'Excel row number of the note (1-based).';
COMMENT ON COLUMN ref_series_footnote.file_hash IS 'sha256 of the file version loaded.';
COMMENT ON COLUMN ref_series_footnote.load_id IS 'Load that wrote the row.';

COMMENT ON TABLE ref_series_edition IS 'One row per loaded edition of a reference dataset: which file, what years, which price base. A second file claiming an edition already loaded from another file is refused.';
COMMENT ON COLUMN ref_series_edition.dataset IS 'Dataset id; with edition the key.';
COMMENT ON COLUMN ref_series_edition.edition IS 'Edition label from the file name (source YAML edition.label).';
COMMENT ON COLUMN ref_series_edition.file_key IS 'Logical source file of the edition.';
COMMENT ON COLUMN ref_series_edition.published_year IS 'Year the edition states it was published (SIPRI: the year after the © sign); NULL when not stated.';
COMMENT ON COLUMN ref_series_edition.first_year IS 'First year of data, from the file name; NULL when the name does not say.';
COMMENT ON COLUMN ref_series_edition.last_year IS 'Last year of data, from the file name; NULL when the name does not say.';
COMMENT ON COLUMN ref_series_edition.price_base_year IS 'Base year of the edition''s constant prices (from the sheet name, e.g. Constant (2021) US$).';
COMMENT ON COLUMN ref_series_edition.sheets IS 'Worksheets loaded.';
COMMENT ON COLUMN ref_series_edition.sheets_ignored IS 'Worksheets the source YAML does not describe (e.g. Front page), not loaded.';
COMMENT ON COLUMN ref_series_edition.file_hash IS 'sha256 of the file version loaded.';
COMMENT ON COLUMN ref_series_edition.load_id IS 'Load that wrote the edition.';
COMMENT ON COLUMN ref_series_edition.loaded_at IS 'When the edition was loaded (local time of the loader).';

COMMENT ON VIEW ref_series_latest_edition IS 'The newest loaded edition of each reference dataset (latest last year of data, then publication year, then load time).';
COMMENT ON VIEW milex_country_year IS 'SIPRI military expenditure per country and year from the newest edition, one column per measure, in base units: US$ (not millions) and fractions (0.05 = 5 %). NULL where SIPRI has no data (status in ref_series_value).';
COMMENT ON VIEW milex_region_year IS 'SIPRI regional totals per region and year from the newest edition, in US$ (constant and current prices).';
COMMENT ON VIEW ref_series_revisions IS 'Values that changed between an edition and the one before it (same dataset, sheet, measure, unit, price base, entity, year): old and new value and status. Constant-price sheets change base year every edition, so they only pair when the base is the same.';
COMMENT ON VIEW mart_partner_funding_vs_milex IS 'Cooperation funding per partner and fiscal year beside the partner''s own military expenditure (SIPRI, newest edition, current US$, same calendar year): shares of it allocated and disbursed.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.partner_iso3 IS 'Partner country, ISO 3166-1 alpha-3.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.partner_name IS 'Partner country name in English.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.fiscal_year IS 'Fiscal year of the funding (ADR 0003), compared with the same SIPRI calendar year.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.allocated_usd IS 'Allocated funding, nominal US$.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.disbursed_usd IS 'Disbursed funding, nominal US$.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.milex_current_usd IS 'The partner''s military expenditure that year, current US$ (SIPRI); NULL when SIPRI has no figure or no edition is loaded.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.milex_status IS 'SIPRI status of that figure: value, missing, not_existing; NULL when no SIPRI row.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.milex_share_of_gdp IS 'The partner''s military expenditure as a fraction of its GDP (SIPRI).';
COMMENT ON COLUMN mart_partner_funding_vs_milex.allocated_share_of_milex IS 'allocated_usd / milex_current_usd (fraction); NULL without a SIPRI figure.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.disbursed_share_of_milex IS 'disbursed_usd / milex_current_usd (fraction); NULL without a SIPRI figure.';
COMMENT ON COLUMN mart_partner_funding_vs_milex.sipri_edition IS 'SIPRI edition the figure comes from.';

COMMENT ON COLUMN ref_series_latest_edition.dataset IS 'Dataset id (e.g. sipri_milex).';
COMMENT ON COLUMN ref_series_latest_edition.edition IS 'Label of the newest loaded edition.';
COMMENT ON COLUMN ref_series_latest_edition.file_key IS 'Logical source file of that edition.';
COMMENT ON COLUMN ref_series_latest_edition.published_year IS 'Year the edition states it was published; NULL when not stated.';
COMMENT ON COLUMN ref_series_latest_edition.first_year IS 'First year of data.';
COMMENT ON COLUMN ref_series_latest_edition.last_year IS 'Last year of data.';
COMMENT ON COLUMN ref_series_latest_edition.price_base_year IS 'Base year of its constant prices.';

COMMENT ON COLUMN milex_country_year.country_iso3 IS 'ISO 3166-1 alpha-3 (former states: ISO 3166-3 or user-assigned, e.g. SUN, YAR); NULL for a name not yet mapped (see mapping_queue).';
COMMENT ON COLUMN milex_country_year.sipri_name IS 'Country name as SIPRI spells it.';
COMMENT ON COLUMN milex_country_year.sipri_region IS 'SIPRI region heading (e.g. Middle East).';
COMMENT ON COLUMN milex_country_year.sipri_subregion IS 'SIPRI sub-region heading (e.g. North Africa); NULL where none.';
COMMENT ON COLUMN milex_country_year.year IS 'Calendar year.';
COMMENT ON COLUMN milex_country_year.edition IS 'SIPRI edition the figures come from (the newest loaded).';
COMMENT ON COLUMN milex_country_year.milex_current_usd IS 'Military expenditure in current US$ (full US$, not millions); NULL when SIPRI has no figure (see current_usd_status).';
COMMENT ON COLUMN milex_country_year.milex_constant_usd IS 'Military expenditure in constant US$ of constant_price_base_year (full US$).';
COMMENT ON COLUMN milex_country_year.constant_price_base_year IS 'Base year of milex_constant_usd (changes with every SIPRI edition).';
COMMENT ON COLUMN milex_country_year.share_of_gdp IS 'Military expenditure as a fraction of GDP (ratio: 0.05 = 5 %).';
COMMENT ON COLUMN milex_country_year.per_capita_usd IS 'Military expenditure per person, current US$.';
COMMENT ON COLUMN milex_country_year.share_of_govt_spending IS 'Military expenditure as a fraction of general government expenditure (ratio: 0.05 = 5 %).';
COMMENT ON COLUMN milex_country_year.local_currency_calendar_year IS 'Military expenditure in local currency at current prices (full units of local_currency), calendar year.';
COMMENT ON COLUMN milex_country_year.local_currency IS 'Local currency as SIPRI names it (e.g. Riyals); not an ISO 4217 code.';
COMMENT ON COLUMN milex_country_year.current_usd_status IS 'Status of the current-US$ figure: value, missing (...), not_existing (xxx), empty, invalid.';
COMMENT ON COLUMN milex_country_year.notes IS 'SIPRI''s footnote marks for the country (texts in ref_series_footnote).';

COMMENT ON COLUMN milex_region_year.region_name IS 'SIPRI region or sub-region (World, Middle East, North Africa, ...).';
COMMENT ON COLUMN milex_region_year.parent_region IS 'The region it belongs to (a region: itself).';
COMMENT ON COLUMN milex_region_year.year IS 'Calendar year.';
COMMENT ON COLUMN milex_region_year.edition IS 'SIPRI edition (the newest loaded).';
COMMENT ON COLUMN milex_region_year.milex_constant_usd IS 'Regional total in constant US$ of constant_price_base_year (full US$; SIPRI states US$ bn).';
COMMENT ON COLUMN milex_region_year.constant_price_base_year IS 'Base year of milex_constant_usd.';
COMMENT ON COLUMN milex_region_year.milex_current_usd IS 'Regional total in current US$ (full US$), where SIPRI gives one (its last year only).';
COMMENT ON COLUMN milex_region_year.omitted_countries IS 'Countries SIPRI left out of the total, as published.';

COMMENT ON COLUMN ref_series_revisions.dataset IS 'Dataset id.';
COMMENT ON COLUMN ref_series_revisions.measure IS 'What the value measures.';
COMMENT ON COLUMN ref_series_revisions.unit IS 'Unit as the sheet states it (value and previous_value are in it).';
COMMENT ON COLUMN ref_series_revisions.price_base_year IS 'Base year of constant prices; NULL for current prices.';
COMMENT ON COLUMN ref_series_revisions.entity_type IS 'country, region or other.';
COMMENT ON COLUMN ref_series_revisions.entity_name IS 'Name as published.';
COMMENT ON COLUMN ref_series_revisions.country_iso3 IS 'ISO 3166-1 alpha-3 of a country row.';
COMMENT ON COLUMN ref_series_revisions.year IS 'Calendar year of the value.';
COMMENT ON COLUMN ref_series_revisions.previous_edition IS 'The edition before (by last year of data, then publication).';
COMMENT ON COLUMN ref_series_revisions.edition IS 'The edition that revised the value.';
COMMENT ON COLUMN ref_series_revisions.previous_value IS 'Value in the previous edition, in unit.';
COMMENT ON COLUMN ref_series_revisions.value IS 'Value in this edition, in unit.';
COMMENT ON COLUMN ref_series_revisions.previous_status IS 'Status in the previous edition (value, missing, not_existing, ...).';
COMMENT ON COLUMN ref_series_revisions.status IS 'Status in this edition.';
COMMENT ON COLUMN ref_series_revisions.change IS 'value - previous_value, in unit.';
COMMENT ON COLUMN ref_series_revisions.relative_change IS 'change / |previous_value| (ratio: 0.05 = +5 %); NULL when the previous value is 0 or NULL.';
