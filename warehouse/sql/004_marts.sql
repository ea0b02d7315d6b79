-- Marts: documented views for the questions analysts ask (CREATE OR REPLACE + COMMENT ON: re-applied on every load;
-- re-creating a view drops its comments, so each view is commented right after it is created).
-- Conventions in every mart:
-- * Money is in US dollars: *_usd nominal (fact_funding_line.amount_usd), *_usd_constant in constant US$ of
--   constant_base_year (US CPI-U, ADR 0005). Lines whose price year has no CPI yet have no constant amount; they are
--   left out of the constant sums and counted in lines_without_constant.
-- * Stages (allocated, committed, obligated, disbursed) are steps of the same money, so a mart either has stage in its
--   grain or one column per stage; stages are never added together.
-- * fiscal_year is the calendar year in which the agency's fiscal period ends (ADR 0003): agencies whose fiscal years
--   start in different months are compared by fiscal_year as labelled, not by calendar period.
-- * Shares and rates are ratios (1.0 = 100 %); *_pct columns are percentages (25.0 = +25 %).

-- Per-stage pivot of the funding lines ------------------------------------------------------------------------------
-- Each line's amounts in the columns of its stage (the other stages' columns NULL). The partner and category marts
-- below sum these columns, so which amount goes to which stage column is written once; created first, as a view
-- must exist before the views that read it.
CREATE OR REPLACE VIEW stage_pivot AS
SELECT
    agency_code, program_code, country_iso3, category_code, fiscal_year, stage,
    CASE WHEN stage = 'allocated' THEN amount_usd END AS allocated_usd,
    CASE WHEN stage = 'committed' THEN amount_usd END AS committed_usd,
    CASE WHEN stage = 'obligated' THEN amount_usd END AS obligated_usd,
    CASE WHEN stage = 'disbursed' THEN amount_usd END AS disbursed_usd,
    CASE WHEN stage = 'allocated' THEN amount_usd_constant END AS allocated_usd_constant,
    CASE WHEN stage = 'committed' THEN amount_usd_constant END AS committed_usd_constant,
    CASE WHEN stage = 'obligated' THEN amount_usd_constant END AS obligated_usd_constant,
    CASE WHEN stage = 'disbursed' THEN amount_usd_constant END AS disbursed_usd_constant,
    constant_base_year,
    amount_usd_constant IS NULL AS without_constant
FROM fact_funding_line;

COMMENT ON VIEW stage_pivot IS 'The funding lines with each line''s amounts in the columns of its stage (nominal and constant US$; the other stages'' columns are NULL), so that summing a column sums one stage and stages are never added together. Grain: one row per fact_funding_line row. The partner and category marts sum it.';
COMMENT ON COLUMN stage_pivot.agency_code IS 'Reporting agency (dim_agency).';
COMMENT ON COLUMN stage_pivot.program_code IS 'Agency''s program code.';
COMMENT ON COLUMN stage_pivot.country_iso3 IS 'Partner country, ISO 3166-1 alpha-3 (dim_country.iso3); NULL as in fact_funding_line.';
COMMENT ON COLUMN stage_pivot.category_code IS 'Canonical category (dim_category); NULL as in fact_funding_line.';
COMMENT ON COLUMN stage_pivot.fiscal_year IS 'Canonical fiscal year: calendar year in which the agency''s fiscal period ends (ADR 0003).';
COMMENT ON COLUMN stage_pivot.stage IS 'Funding stage of the line: allocated, committed, obligated or disbursed.';
COMMENT ON COLUMN stage_pivot.allocated_usd IS 'amount_usd of an allocated line, US dollars, nominal; NULL for a line of another stage.';
COMMENT ON COLUMN stage_pivot.committed_usd IS 'amount_usd of a committed line, US dollars, nominal; NULL for a line of another stage.';
COMMENT ON COLUMN stage_pivot.obligated_usd IS 'amount_usd of an obligated line, US dollars, nominal; NULL for a line of another stage.';
COMMENT ON COLUMN stage_pivot.disbursed_usd IS 'amount_usd of a disbursed line, US dollars, nominal; NULL for a line of another stage.';
COMMENT ON COLUMN stage_pivot.allocated_usd_constant IS 'amount_usd_constant of an allocated line, constant US dollars of constant_base_year (US CPI-U); NULL for a line of another stage or without CPI yet.';
COMMENT ON COLUMN stage_pivot.committed_usd_constant IS 'amount_usd_constant of a committed line, constant US dollars of constant_base_year (US CPI-U); NULL for a line of another stage or without CPI yet.';
COMMENT ON COLUMN stage_pivot.obligated_usd_constant IS 'amount_usd_constant of an obligated line, constant US dollars of constant_base_year (US CPI-U); NULL for a line of another stage or without CPI yet.';
COMMENT ON COLUMN stage_pivot.disbursed_usd_constant IS 'amount_usd_constant of a disbursed line, constant US dollars of constant_base_year (US CPI-U); NULL for a line of another stage or without CPI yet.';
COMMENT ON COLUMN stage_pivot.constant_base_year IS 'Base year of the *_usd_constant columns (calendar year).';
COMMENT ON COLUMN stage_pivot.without_constant IS 'true when the line has no constant-US$ amount yet (price year without CPI).';

-- Partner country x fiscal year -------------------------------------------------------------------------------------
CREATE OR REPLACE VIEW mart_funding_by_partner_year AS
WITH by_partner_year AS (
    SELECT
        country_iso3, fiscal_year,
        sum(allocated_usd) AS allocated_usd, sum(committed_usd) AS committed_usd,
        sum(obligated_usd) AS obligated_usd, sum(disbursed_usd) AS disbursed_usd,
        sum(allocated_usd_constant) AS allocated_usd_constant, sum(committed_usd_constant) AS committed_usd_constant,
        sum(obligated_usd_constant) AS obligated_usd_constant, sum(disbursed_usd_constant) AS disbursed_usd_constant,
        max(constant_base_year) AS constant_base_year,
        count(*) AS lines,
        count(DISTINCT agency_code) AS agencies,
        count(DISTINCT (agency_code, program_code)) AS programs,
        count(*) FILTER (WHERE without_constant) AS lines_without_constant
    FROM stage_pivot
    GROUP BY country_iso3, fiscal_year
),
final AS (
    SELECT
        b.country_iso3 AS partner_iso3, c.name_en AS partner_name, c.name_ar AS partner_name_ar,
        c.region, c.subregion, c.oic_member, b.fiscal_year,
        b.allocated_usd, b.committed_usd, b.obligated_usd, b.disbursed_usd,
        b.allocated_usd_constant, b.committed_usd_constant, b.obligated_usd_constant, b.disbursed_usd_constant,
        b.constant_base_year, b.lines, b.agencies, b.programs, b.lines_without_constant
    FROM by_partner_year b
    LEFT JOIN dim_country c ON c.iso3 = b.country_iso3
)
SELECT * FROM final ORDER BY partner_iso3, fiscal_year;

COMMENT ON VIEW mart_funding_by_partner_year IS 'Funding per partner country and fiscal year, one US$ column per stage (nominal and constant US$; stages are steps of the same money and are not added together). Grain: partner_iso3 x fiscal_year, rows only where there is at least one line.';
COMMENT ON COLUMN mart_funding_by_partner_year.partner_iso3 IS 'Partner country, ISO 3166-1 alpha-3.';
COMMENT ON COLUMN mart_funding_by_partner_year.partner_name IS 'Partner country name in English (ISO 3166).';
COMMENT ON COLUMN mart_funding_by_partner_year.partner_name_ar IS 'Partner country name in Arabic.';
COMMENT ON COLUMN mart_funding_by_partner_year.region IS 'Partner''s UN M49 region.';
COMMENT ON COLUMN mart_funding_by_partner_year.subregion IS 'Partner''s UN M49 sub-region.';
COMMENT ON COLUMN mart_funding_by_partner_year.oic_member IS 'true when the partner is a member of the Organisation of Islamic Cooperation.';
COMMENT ON COLUMN mart_funding_by_partner_year.fiscal_year IS 'Canonical fiscal year: calendar year in which the agency''s fiscal period ends (ADR 0003).';
COMMENT ON COLUMN mart_funding_by_partner_year.allocated_usd IS 'Allocated, US dollars, nominal; NULL when no allocated line was reported (0 only when reported lines add up to 0).';
COMMENT ON COLUMN mart_funding_by_partner_year.committed_usd IS 'Committed, US dollars, nominal; NULL when no committed line was reported (0 only when reported lines add up to 0).';
COMMENT ON COLUMN mart_funding_by_partner_year.obligated_usd IS 'Obligated, US dollars, nominal; NULL when no obligated line was reported (0 only when reported lines add up to 0).';
COMMENT ON COLUMN mart_funding_by_partner_year.disbursed_usd IS 'Disbursed, US dollars, nominal; NULL when no disbursed line was reported (0 only when reported lines add up to 0).';
COMMENT ON COLUMN mart_funding_by_partner_year.allocated_usd_constant IS 'Allocated, constant US dollars of constant_base_year (US CPI-U).';
COMMENT ON COLUMN mart_funding_by_partner_year.committed_usd_constant IS 'Committed, constant US dollars of constant_base_year (US CPI-U).';
COMMENT ON COLUMN mart_funding_by_partner_year.obligated_usd_constant IS 'Obligated, constant US dollars of constant_base_year (US CPI-U).';
COMMENT ON COLUMN mart_funding_by_partner_year.disbursed_usd_constant IS 'Disbursed, constant US dollars of constant_base_year (US CPI-U).';
COMMENT ON COLUMN mart_funding_by_partner_year.constant_base_year IS 'Base year of the *_usd_constant columns (calendar year).';
COMMENT ON COLUMN mart_funding_by_partner_year.lines IS 'Funding lines, all stages (count).';
COMMENT ON COLUMN mart_funding_by_partner_year.agencies IS 'Agencies with at least one line (count).';
COMMENT ON COLUMN mart_funding_by_partner_year.programs IS 'Distinct agency programs with at least one line (count).';
COMMENT ON COLUMN mart_funding_by_partner_year.lines_without_constant IS 'Lines with no constant-US$ amount yet (price year without CPI), left out of the *_usd_constant sums (count).';

-- Category x fiscal year --------------------------------------------------------------------------------------------
CREATE OR REPLACE VIEW mart_funding_by_category AS
WITH by_category_year AS (
    SELECT
        category_code, fiscal_year,
        sum(allocated_usd) AS allocated_usd, sum(committed_usd) AS committed_usd,
        sum(obligated_usd) AS obligated_usd, sum(disbursed_usd) AS disbursed_usd,
        sum(allocated_usd_constant) AS allocated_usd_constant, sum(committed_usd_constant) AS committed_usd_constant,
        sum(obligated_usd_constant) AS obligated_usd_constant, sum(disbursed_usd_constant) AS disbursed_usd_constant,
        max(constant_base_year) AS constant_base_year,
        count(*) AS lines,
        count(DISTINCT agency_code) AS agencies,
        count(DISTINCT country_iso3) AS partners,
        count(DISTINCT (agency_code, program_code)) AS programs,
        count(*) FILTER (WHERE without_constant) AS lines_without_constant
    FROM stage_pivot
    GROUP BY category_code, fiscal_year
),
final AS (
    SELECT
        b.category_code, k.name_en AS category_name, k.name_ar AS category_name_ar, k.dac_code, b.fiscal_year,
        b.allocated_usd, b.committed_usd, b.obligated_usd, b.disbursed_usd,
        b.allocated_usd_constant, b.committed_usd_constant, b.obligated_usd_constant, b.disbursed_usd_constant,
        b.constant_base_year, b.lines, b.agencies, b.partners, b.programs, b.lines_without_constant
    FROM by_category_year b
    LEFT JOIN dim_category k USING (category_code)
)
SELECT * FROM final ORDER BY category_code, fiscal_year;

COMMENT ON VIEW mart_funding_by_category IS 'Funding per canonical category and fiscal year, one US$ column per stage (nominal and constant US$; stages are not added together). Grain: category_code x fiscal_year, rows only where there is at least one line.';
COMMENT ON COLUMN mart_funding_by_category.category_code IS 'Canonical category (dim_category).';
COMMENT ON COLUMN mart_funding_by_category.category_name IS 'Category name in English.';
COMMENT ON COLUMN mart_funding_by_category.category_name_ar IS 'Category name in Arabic.';
COMMENT ON COLUMN mart_funding_by_category.dac_code IS 'OECD DAC purpose code where one corresponds; NULL otherwise.';
COMMENT ON COLUMN mart_funding_by_category.fiscal_year IS 'Canonical fiscal year: calendar year in which the agency''s fiscal period ends (ADR 0003).';
COMMENT ON COLUMN mart_funding_by_category.allocated_usd IS 'Allocated, US dollars, nominal; NULL when no allocated line was reported (0 only when reported lines add up to 0).';
COMMENT ON COLUMN mart_funding_by_category.committed_usd IS 'Committed, US dollars, nominal; NULL when no committed line was reported (0 only when reported lines add up to 0).';
COMMENT ON COLUMN mart_funding_by_category.obligated_usd IS 'Obligated, US dollars, nominal; NULL when no obligated line was reported (0 only when reported lines add up to 0).';
COMMENT ON COLUMN mart_funding_by_category.disbursed_usd IS 'Disbursed, US dollars, nominal; NULL when no disbursed line was reported (0 only when reported lines add up to 0).';
COMMENT ON COLUMN mart_funding_by_category.allocated_usd_constant IS 'Allocated, constant US dollars of constant_base_year (US CPI-U).';
COMMENT ON COLUMN mart_funding_by_category.committed_usd_constant IS 'Committed, constant US dollars of constant_base_year (US CPI-U).';
COMMENT ON COLUMN mart_funding_by_category.obligated_usd_constant IS 'Obligated, constant US dollars of constant_base_year (US CPI-U).';
COMMENT ON COLUMN mart_funding_by_category.disbursed_usd_constant IS 'Disbursed, constant US dollars of constant_base_year (US CPI-U).';
COMMENT ON COLUMN mart_funding_by_category.constant_base_year IS 'Base year of the *_usd_constant columns (calendar year).';
COMMENT ON COLUMN mart_funding_by_category.lines IS 'Funding lines, all stages (count).';
COMMENT ON COLUMN mart_funding_by_category.agencies IS 'Agencies with at least one line (count).';
COMMENT ON COLUMN mart_funding_by_category.partners IS 'Partner countries with at least one line (count).';
COMMENT ON COLUMN mart_funding_by_category.programs IS 'Distinct agency programs with at least one line (count).';
COMMENT ON COLUMN mart_funding_by_category.lines_without_constant IS 'Lines with no constant-US$ amount yet (price year without CPI), left out of the *_usd_constant sums (count).';

-- Agency x fiscal year x stage --------------------------------------------------------------------------------------
CREATE OR REPLACE VIEW mart_funding_by_agency AS
WITH lines AS (
    SELECT agency_code, fiscal_year, stage, country_iso3, program_code, category_code, amount_usd,
           amount_usd_constant, constant_base_year
    FROM fact_funding_line
),
by_agency_year_stage AS (
    SELECT
        agency_code, fiscal_year, stage,
        sum(amount_usd) AS amount_usd,
        coalesce(sum(amount_usd_constant), 0) AS amount_usd_constant,
        max(constant_base_year) AS constant_base_year,
        count(*) AS lines,
        count(DISTINCT country_iso3) AS partners,
        count(DISTINCT program_code) AS programs,
        count(DISTINCT category_code) AS categories,
        count(*) FILTER (WHERE amount_usd_constant IS NULL) AS lines_without_constant
    FROM lines
    GROUP BY agency_code, fiscal_year, stage
),
final AS (
    SELECT
        b.agency_code, a.name_en AS agency_name, b.fiscal_year, p.period_start, p.period_end, b.stage,
        b.amount_usd, b.amount_usd_constant, b.constant_base_year,
        b.lines, b.partners, b.programs, b.categories, b.lines_without_constant
    FROM by_agency_year_stage b
    LEFT JOIN dim_agency a USING (agency_code)
    LEFT JOIN dim_fiscal_period p USING (agency_code, fiscal_year)
)
SELECT * FROM final
ORDER BY agency_code, fiscal_year,
         CASE stage WHEN 'allocated' THEN 1 WHEN 'committed' THEN 2 WHEN 'obligated' THEN 3 ELSE 4 END;

COMMENT ON VIEW mart_funding_by_agency IS 'Funding per agency, fiscal year and stage, with the fiscal period''s dates (nominal and constant US$). Grain: agency_code x fiscal_year x stage, rows only for stages the agency reported that year.';
COMMENT ON COLUMN mart_funding_by_agency.agency_code IS 'Reporting agency (dim_agency).';
COMMENT ON COLUMN mart_funding_by_agency.agency_name IS 'Agency name in English.';
COMMENT ON COLUMN mart_funding_by_agency.fiscal_year IS 'Canonical fiscal year: calendar year in which the agency''s fiscal period ends (ADR 0003).';
COMMENT ON COLUMN mart_funding_by_agency.period_start IS 'First day of the agency''s fiscal period (inclusive).';
COMMENT ON COLUMN mart_funding_by_agency.period_end IS 'Last day of the agency''s fiscal period (inclusive).';
COMMENT ON COLUMN mart_funding_by_agency.stage IS 'Funding stage: allocated, committed, obligated or disbursed.';
COMMENT ON COLUMN mart_funding_by_agency.amount_usd IS 'Sum of the stage''s lines, US dollars, nominal.';
COMMENT ON COLUMN mart_funding_by_agency.amount_usd_constant IS 'Sum of the stage''s lines, constant US dollars of constant_base_year (US CPI-U).';
COMMENT ON COLUMN mart_funding_by_agency.constant_base_year IS 'Base year of amount_usd_constant (calendar year).';
COMMENT ON COLUMN mart_funding_by_agency.lines IS 'Funding lines (count).';
COMMENT ON COLUMN mart_funding_by_agency.partners IS 'Partner countries (count).';
COMMENT ON COLUMN mart_funding_by_agency.programs IS 'Programs (count).';
COMMENT ON COLUMN mart_funding_by_agency.categories IS 'Canonical categories (count).';
COMMENT ON COLUMN mart_funding_by_agency.lines_without_constant IS 'Lines with no constant-US$ amount yet (price year without CPI), left out of amount_usd_constant (count).';

-- Budget execution: agency x program x fiscal year ------------------------------------------------------------------
CREATE OR REPLACE VIEW mart_budget_execution AS
WITH lines AS (
    SELECT agency_code, program_code, program_name, fiscal_year, stage, amount_usd
    FROM fact_funding_line
),
-- which stages each agency reported in each fiscal year: a stage it did not report is unknown (NULL), not 0
agency_years AS (
    SELECT agency_code, fiscal_year,
           bool_or(stage = 'allocated') AS reports_allocated, bool_or(stage = 'committed') AS reports_committed,
           bool_or(stage = 'obligated') AS reports_obligated, bool_or(stage = 'disbursed') AS reports_disbursed
    FROM lines
    GROUP BY agency_code, fiscal_year
),
programs AS (  -- the latest record of each program (dim_program may hold one per programs file)
    SELECT p.agency_code, p.program_code, p.name_en
    FROM dim_program p
    LEFT JOIN audit_load l USING (load_id)
    QUALIFY row_number() OVER (PARTITION BY p.agency_code, p.program_code
                               ORDER BY l.started_at DESC NULLS LAST, p.load_id DESC, p.file_key DESC, p.excel_row DESC) = 1
),
by_program_year AS (
    SELECT
        agency_code, program_code, fiscal_year,
        max(program_name) AS program_name_in_file,
        sum(amount_usd) FILTER (WHERE stage = 'allocated') AS allocated_usd,
        sum(amount_usd) FILTER (WHERE stage = 'committed') AS committed_usd,
        sum(amount_usd) FILTER (WHERE stage = 'obligated') AS obligated_usd,
        sum(amount_usd) FILTER (WHERE stage = 'disbursed') AS disbursed_usd,
        count(*) AS lines
    FROM lines
    GROUP BY agency_code, program_code, fiscal_year
),
stages AS (
    SELECT
        b.agency_code, b.program_code, coalesce(p.name_en, b.program_name_in_file) AS program_name, b.fiscal_year,
        CASE WHEN y.reports_allocated THEN coalesce(b.allocated_usd, 0) END AS allocated_usd,
        CASE WHEN y.reports_committed THEN coalesce(b.committed_usd, 0) END AS committed_usd,
        CASE WHEN y.reports_obligated THEN coalesce(b.obligated_usd, 0) END AS obligated_usd,
        CASE WHEN y.reports_disbursed THEN coalesce(b.disbursed_usd, 0) END AS disbursed_usd,
        b.lines
    FROM by_program_year b
    JOIN agency_years y USING (agency_code, fiscal_year)
    LEFT JOIN programs p USING (agency_code, program_code)
),
final AS (
    SELECT
        s.agency_code, a.name_en AS agency_name, s.program_code, s.program_name, s.fiscal_year,
        s.allocated_usd, s.committed_usd, s.obligated_usd, s.disbursed_usd,
        CASE WHEN s.allocated_usd > 0 THEN s.committed_usd / s.allocated_usd END AS commitment_rate,
        CASE WHEN s.allocated_usd > 0 THEN s.disbursed_usd / s.allocated_usd END AS disbursement_rate,
        s.lines
    FROM stages s
    LEFT JOIN dim_agency a USING (agency_code)
)
SELECT * FROM final ORDER BY agency_code, program_code, fiscal_year;

COMMENT ON VIEW mart_budget_execution IS 'Budget execution per agency, program and fiscal year: allocated, committed, obligated and disbursed US$ side by side, and commitment and disbursement rates. A stage the agency did not report that fiscal year is NULL (unknown); a stage it reported but not for this program is 0.';
COMMENT ON COLUMN mart_budget_execution.agency_code IS 'Reporting agency (dim_agency).';
COMMENT ON COLUMN mart_budget_execution.agency_name IS 'Agency name in English.';
COMMENT ON COLUMN mart_budget_execution.program_code IS 'Agency''s program code.';
COMMENT ON COLUMN mart_budget_execution.program_name IS 'Program name: English name from dim_program (latest record), else the name in the budget file (any language); NULL when neither has one.';
COMMENT ON COLUMN mart_budget_execution.fiscal_year IS 'Canonical fiscal year: calendar year in which the agency''s fiscal period ends (ADR 0003).';
COMMENT ON COLUMN mart_budget_execution.allocated_usd IS 'Allocated, US dollars, nominal; NULL when the agency reported no allocation that fiscal year.';
COMMENT ON COLUMN mart_budget_execution.committed_usd IS 'Committed, US dollars, nominal; NULL when the agency reported no commitment that fiscal year.';
COMMENT ON COLUMN mart_budget_execution.obligated_usd IS 'Obligated, US dollars, nominal; NULL when the agency reported no obligation that fiscal year.';
COMMENT ON COLUMN mart_budget_execution.disbursed_usd IS 'Disbursed, US dollars, nominal; NULL when the agency reported no disbursement that fiscal year.';
COMMENT ON COLUMN mart_budget_execution.commitment_rate IS 'committed_usd / allocated_usd, a ratio (1.0 = 100 %); NULL when allocated is 0 or missing or committed is unknown.';
COMMENT ON COLUMN mart_budget_execution.disbursement_rate IS 'disbursed_usd / allocated_usd, a ratio (1.0 = 100 %); NULL when allocated is 0 or missing or disbursed is unknown.';
COMMENT ON COLUMN mart_budget_execution.lines IS 'Funding lines of the program that fiscal year, all stages (count).';

-- Program portfolio -------------------------------------------------------------------------------------------------
CREATE OR REPLACE VIEW mart_program_portfolio AS
WITH programs AS (  -- the latest record of each program (dim_program may hold one per programs file)
    SELECT p.*
    FROM dim_program p
    LEFT JOIN audit_load l USING (load_id)
    QUALIFY row_number() OVER (PARTITION BY p.agency_code, p.program_code
                               ORDER BY l.started_at DESC NULLS LAST, p.load_id DESC, p.file_key DESC, p.excel_row DESC) = 1
),
partner_names AS (
    SELECT agency_code, program_code, list(coalesce(c.name_en, u.iso3) ORDER BY u.iso3) AS partner_names
    FROM (SELECT agency_code, program_code, unnest(partner_iso3) AS iso3 FROM programs) u
    LEFT JOIN dim_country c ON c.iso3 = u.iso3
    GROUP BY agency_code, program_code
),
lines AS (
    SELECT agency_code, program_code, fiscal_year, stage, amount_usd FROM fact_funding_line
),
-- which stages each agency ever reported: a stage it never reports is unknown (NULL), not 0
agency_stages AS (
    SELECT agency_code,
           bool_or(stage = 'allocated') AS reports_allocated, bool_or(stage = 'committed') AS reports_committed,
           bool_or(stage = 'obligated') AS reports_obligated, bool_or(stage = 'disbursed') AS reports_disbursed
    FROM lines
    GROUP BY agency_code
),
funding AS (
    SELECT agency_code, program_code,
           sum(amount_usd) FILTER (WHERE stage = 'allocated') AS allocated_usd,
           sum(amount_usd) FILTER (WHERE stage = 'committed') AS committed_usd,
           sum(amount_usd) FILTER (WHERE stage = 'obligated') AS obligated_usd,
           sum(amount_usd) FILTER (WHERE stage = 'disbursed') AS disbursed_usd,
           min(fiscal_year) AS first_fiscal_year, max(fiscal_year) AS last_fiscal_year,
           count(*) AS lines
    FROM lines
    GROUP BY agency_code, program_code
),
final AS (
    SELECT
        p.agency_code, a.name_en AS agency_name, p.program_code, p.name_en AS program_name,
        p.name_ar AS program_name_ar, p.category_code, k.name_en AS category_name,
        p.partner_iso3, n.partner_names, coalesce(len(p.partner_iso3), 0) AS partners,
        p.start_date, p.end_date, p.status,
        coalesce(p.start_date <= current_date AND current_date <= p.end_date, false) AS in_date_range,
        coalesce(p.start_date <= current_date AND current_date <= p.end_date, false)
            OR coalesce(p.status = 'active', false) AS is_active,
        CASE WHEN s.reports_allocated THEN coalesce(f.allocated_usd, 0) END AS lifetime_allocated_usd,
        CASE WHEN s.reports_committed THEN coalesce(f.committed_usd, 0) END AS lifetime_committed_usd,
        CASE WHEN s.reports_obligated THEN coalesce(f.obligated_usd, 0) END AS lifetime_obligated_usd,
        CASE WHEN s.reports_disbursed THEN coalesce(f.disbursed_usd, 0) END AS lifetime_disbursed_usd,
        f.first_fiscal_year, f.last_fiscal_year, coalesce(f.lines, 0) AS lines,
        p.file_key, p.sheet, p.excel_row
    FROM programs p
    LEFT JOIN dim_agency a USING (agency_code)
    LEFT JOIN dim_category k USING (category_code)
    LEFT JOIN partner_names n USING (agency_code, program_code)
    LEFT JOIN agency_stages s USING (agency_code)
    LEFT JOIN funding f USING (agency_code, program_code)
)
SELECT * FROM final ORDER BY agency_code, program_code;

COMMENT ON VIEW mart_program_portfolio IS 'One row per program in dim_program (its latest record: most recent load, then last file and row), with partners, category, dates, status, an active flag and lifetime funding per stage from the facts (nominal US$). Programs of agencies without a programs file are not listed; is_active and in_date_range depend on today''s date.';
COMMENT ON COLUMN mart_program_portfolio.agency_code IS 'Agency running the program (dim_agency).';
COMMENT ON COLUMN mart_program_portfolio.agency_name IS 'Agency name in English.';
COMMENT ON COLUMN mart_program_portfolio.program_code IS 'Agency''s program code.';
COMMENT ON COLUMN mart_program_portfolio.program_name IS 'Program name in English.';
COMMENT ON COLUMN mart_program_portfolio.program_name_ar IS 'Program name in Arabic; NULL when the file gives none.';
COMMENT ON COLUMN mart_program_portfolio.category_code IS 'Canonical category (dim_category); NULL when the file gives none.';
COMMENT ON COLUMN mart_program_portfolio.category_name IS 'Category name in English.';
COMMENT ON COLUMN mart_program_portfolio.partner_iso3 IS 'Partner countries: sorted list of ISO 3166-1 alpha-3 codes; NULL when none listed.';
COMMENT ON COLUMN mart_program_portfolio.partner_names IS 'Partner country names in English, in the order of partner_iso3.';
COMMENT ON COLUMN mart_program_portfolio.partners IS 'Partner countries listed (count).';
COMMENT ON COLUMN mart_program_portfolio.start_date IS 'Program start date as the file states it.';
COMMENT ON COLUMN mart_program_portfolio.end_date IS 'Program end date as the file states it.';
COMMENT ON COLUMN mart_program_portfolio.status IS 'Status as the file states it, lower case (e.g. planned, active, completed).';
COMMENT ON COLUMN mart_program_portfolio.in_date_range IS 'true when start_date <= today <= end_date (false when a date is missing).';
COMMENT ON COLUMN mart_program_portfolio.is_active IS 'true when in_date_range or status is ''active''.';
COMMENT ON COLUMN mart_program_portfolio.lifetime_allocated_usd IS 'Allocated over all fiscal years, US dollars, nominal; NULL when the agency never reports allocations.';
COMMENT ON COLUMN mart_program_portfolio.lifetime_committed_usd IS 'Committed over all fiscal years, US dollars, nominal; NULL when the agency never reports commitments.';
COMMENT ON COLUMN mart_program_portfolio.lifetime_obligated_usd IS 'Obligated over all fiscal years, US dollars, nominal; NULL when the agency never reports obligations.';
COMMENT ON COLUMN mart_program_portfolio.lifetime_disbursed_usd IS 'Disbursed over all fiscal years, US dollars, nominal; NULL when the agency never reports disbursements.';
COMMENT ON COLUMN mart_program_portfolio.first_fiscal_year IS 'First fiscal year with a funding line (ADR 0003); NULL when none.';
COMMENT ON COLUMN mart_program_portfolio.last_fiscal_year IS 'Last fiscal year with a funding line (ADR 0003); NULL when none.';
COMMENT ON COLUMN mart_program_portfolio.lines IS 'Funding lines of the program, all stages and years (count).';
COMMENT ON COLUMN mart_program_portfolio.file_key IS 'Programs file of the record (ADR 0002).';
COMMENT ON COLUMN mart_program_portfolio.sheet IS 'Worksheet of the record; empty string for a CSV file.';
COMMENT ON COLUMN mart_program_portfolio.excel_row IS 'Excel row number of the record as the steward sees it (1-based).';

-- Year-on-year change: agency x partner x stage x fiscal year -------------------------------------------------------
CREATE OR REPLACE VIEW mart_yoy_change AS
WITH lines AS (
    SELECT agency_code, country_iso3, stage, fiscal_year, amount_usd, amount_usd_constant FROM fact_funding_line
),
-- the fiscal years in which each agency reported each stage
reported_years AS (
    SELECT DISTINCT agency_code, stage, fiscal_year FROM lines
),
amounts AS (
    SELECT agency_code, country_iso3, stage, fiscal_year,
           sum(amount_usd) AS amount_usd, sum(amount_usd_constant) AS amount_usd_constant, count(*) AS lines
    FROM lines
    GROUP BY agency_code, country_iso3, stage, fiscal_year
),
-- every partner the agency funded at that stage, in every year it reported the stage: no line that year = 0
grid AS (
    SELECT DISTINCT a.agency_code, a.country_iso3, a.stage, r.fiscal_year
    FROM amounts a
    JOIN reported_years r USING (agency_code, stage)
),
yearly AS (
    SELECT g.agency_code, g.country_iso3, g.stage, g.fiscal_year,
           coalesce(a.amount_usd, 0) AS amount_usd,
           CASE WHEN a.lines IS NULL THEN 0 ELSE a.amount_usd_constant END AS amount_usd_constant,
           coalesce(a.lines, 0) AS lines
    FROM grid g
    LEFT JOIN amounts a USING (agency_code, country_iso3, stage, fiscal_year)
),
with_previous AS (
    SELECT cur.*, prev.amount_usd AS prev_amount_usd, prev.amount_usd_constant AS prev_amount_usd_constant
    FROM yearly cur
    LEFT JOIN yearly prev
           ON prev.agency_code = cur.agency_code AND prev.country_iso3 = cur.country_iso3
          AND prev.stage = cur.stage AND prev.fiscal_year = cur.fiscal_year - 1
),
final AS (
    SELECT
        w.agency_code, a.name_en AS agency_name, w.country_iso3 AS partner_iso3, c.name_en AS partner_name,
        w.stage, w.fiscal_year,
        w.amount_usd, w.prev_amount_usd,
        w.amount_usd - w.prev_amount_usd AS change_usd,
        CASE WHEN w.prev_amount_usd <> 0 THEN 100 * (w.amount_usd - w.prev_amount_usd) / w.prev_amount_usd END AS change_pct,
        w.amount_usd_constant, w.prev_amount_usd_constant,
        w.amount_usd_constant - w.prev_amount_usd_constant AS change_usd_constant,
        CASE WHEN w.prev_amount_usd_constant <> 0
             THEN 100 * (w.amount_usd_constant - w.prev_amount_usd_constant) / w.prev_amount_usd_constant END AS change_pct_constant,
        w.lines
    FROM with_previous w
    LEFT JOIN dim_agency a USING (agency_code)
    LEFT JOIN dim_country c ON c.iso3 = w.country_iso3
)
SELECT * FROM final
ORDER BY agency_code, partner_iso3,
         CASE stage WHEN 'allocated' THEN 1 WHEN 'committed' THEN 2 WHEN 'obligated' THEN 3 ELSE 4 END, fiscal_year;

COMMENT ON VIEW mart_yoy_change IS 'Year-on-year change per agency, partner country and stage (the same stage is compared, allocations with allocations): US$ this fiscal year, the previous fiscal year (fiscal_year - 1) and the change. For every partner an agency funded at a stage, there is a row for every fiscal year the agency reported that stage (0 when the partner had no line that year); the previous-year columns are NULL when the agency did not report the stage in fiscal_year - 1.';
COMMENT ON COLUMN mart_yoy_change.agency_code IS 'Reporting agency (dim_agency).';
COMMENT ON COLUMN mart_yoy_change.agency_name IS 'Agency name in English.';
COMMENT ON COLUMN mart_yoy_change.partner_iso3 IS 'Partner country, ISO 3166-1 alpha-3.';
COMMENT ON COLUMN mart_yoy_change.partner_name IS 'Partner country name in English (ISO 3166).';
COMMENT ON COLUMN mart_yoy_change.stage IS 'Funding stage: allocated, committed, obligated or disbursed.';
COMMENT ON COLUMN mart_yoy_change.fiscal_year IS 'Canonical fiscal year: calendar year in which the agency''s fiscal period ends (ADR 0003).';
COMMENT ON COLUMN mart_yoy_change.amount_usd IS 'This fiscal year, US dollars, nominal (0 when no line).';
COMMENT ON COLUMN mart_yoy_change.prev_amount_usd IS 'Previous fiscal year, US dollars, nominal; NULL when the agency did not report the stage that year.';
COMMENT ON COLUMN mart_yoy_change.change_usd IS 'amount_usd - prev_amount_usd, US dollars, nominal; NULL when no previous year.';
COMMENT ON COLUMN mart_yoy_change.change_pct IS 'Change in nominal US$ as a percentage of the previous year (25.0 = +25 %); NULL when no previous year or it was 0.';
COMMENT ON COLUMN mart_yoy_change.amount_usd_constant IS 'This fiscal year, constant US dollars of the base year (US CPI-U); lines without CPI yet are left out (NULL when all are).';
COMMENT ON COLUMN mart_yoy_change.prev_amount_usd_constant IS 'Previous fiscal year, constant US dollars of the base year; NULL when no previous year.';
COMMENT ON COLUMN mart_yoy_change.change_usd_constant IS 'amount_usd_constant - prev_amount_usd_constant, constant US dollars (real change); NULL when no previous year.';
COMMENT ON COLUMN mart_yoy_change.change_pct_constant IS 'Real change as a percentage of the previous year in constant US$ (25.0 = +25 %); NULL when no previous year or it was 0.';
COMMENT ON COLUMN mart_yoy_change.lines IS 'Funding lines this fiscal year (count).';

-- Data quality per agency -------------------------------------------------------------------------------------------
CREATE OR REPLACE VIEW mart_data_quality AS
WITH files AS (
    SELECT * FROM audit_source_file WHERE is_current
),
by_agency AS (
    SELECT
        f.agency_code,
        count(*) AS files_current,
        count(*) FILTER (WHERE f.status = 'failed') AS files_failed,
        CAST(sum(f.rows_read) AS BIGINT) AS rows_read, CAST(sum(f.rows_loaded) AS BIGINT) AS rows_loaded,
        CAST(sum(f.rows_quarantined) AS BIGINT) AS rows_quarantined,
        CAST(sum(f.rows_skipped) AS BIGINT) AS rows_skipped,
        max(l.finished_at) AS last_loaded_at
    FROM files f
    LEFT JOIN audit_load l USING (load_id)
    GROUP BY f.agency_code
),
failures AS (
    SELECT agency_code,
           count(*) FILTER (WHERE severity = 'block') AS open_blocking,
           count(*) FILTER (WHERE severity = 'warn') AS open_warnings
    FROM audit_validation_failure
    WHERE status = 'open'
    GROUP BY agency_code
),
waiting AS (
    SELECT agency_code, count(*) AS labels_waiting FROM mapping_queue GROUP BY agency_code
),
agencies AS (
    SELECT agency_code FROM dim_agency
    UNION SELECT agency_code FROM by_agency
    UNION SELECT agency_code FROM failures
),
final AS (
    SELECT
        g.agency_code, a.name_en AS agency_name,
        coalesce(b.files_current, 0) AS files_current, coalesce(b.files_failed, 0) AS files_failed,
        coalesce(b.rows_read, 0) AS rows_read, coalesce(b.rows_loaded, 0) AS rows_loaded,
        coalesce(b.rows_quarantined, 0) AS rows_quarantined, coalesce(b.rows_skipped, 0) AS rows_skipped,
        CASE WHEN b.rows_read > 0 THEN b.rows_quarantined / b.rows_read END AS quarantined_share,
        coalesce(f.open_blocking, 0) AS open_blocking, coalesce(f.open_warnings, 0) AS open_warnings,
        coalesce(w.labels_waiting, 0) AS labels_waiting,
        b.last_loaded_at
    FROM agencies g
    LEFT JOIN dim_agency a USING (agency_code)
    LEFT JOIN by_agency b USING (agency_code)
    LEFT JOIN failures f USING (agency_code)
    LEFT JOIN waiting w USING (agency_code)
)
SELECT * FROM final ORDER BY agency_code;

COMMENT ON VIEW mart_data_quality IS 'Data quality per agency: current file versions and their row counts (audit_source_file where is_current), open validation failures by severity, labels waiting for a mapping, and when the current files were loaded. rows_read = rows_loaded + rows_quarantined + rows_skipped.';
COMMENT ON COLUMN mart_data_quality.agency_code IS 'Agency (dim_agency).';
COMMENT ON COLUMN mart_data_quality.agency_name IS 'Agency name in English.';
COMMENT ON COLUMN mart_data_quality.files_current IS 'Source files whose current version is in the warehouse (count).';
COMMENT ON COLUMN mart_data_quality.files_failed IS 'Current files that could not be read or stored (count).';
COMMENT ON COLUMN mart_data_quality.rows_read IS 'Rows read from the current files (count).';
COMMENT ON COLUMN mart_data_quality.rows_loaded IS 'Rows loaded into fact_funding_line or dim_program (count).';
COMMENT ON COLUMN mart_data_quality.rows_quarantined IS 'Rows held back in quarantine_row (count).';
COMMENT ON COLUMN mart_data_quality.rows_skipped IS 'Blank and totals rows skipped (count).';
COMMENT ON COLUMN mart_data_quality.quarantined_share IS 'rows_quarantined / rows_read, a ratio (0.02 = 2 %); NULL when no row was read.';
COMMENT ON COLUMN mart_data_quality.open_blocking IS 'Open failures of severity block (count; one row can have several).';
COMMENT ON COLUMN mart_data_quality.open_warnings IS 'Open failures of severity warn (count).';
COMMENT ON COLUMN mart_data_quality.labels_waiting IS 'Distinct unmapped labels waiting in mapping_queue (count).';
COMMENT ON COLUMN mart_data_quality.last_loaded_at IS 'When the latest of the loads that stored the current files finished (audit_load.finished_at, local time); NULL when no file.';
