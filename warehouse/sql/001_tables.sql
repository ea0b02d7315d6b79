-- Warehouse tables. Idempotent: applied to every staging copy before loading.
-- Money columns: amount_original in the original currency (full units, not thousands); amount_usd in US$ (nominal).
-- The row-level tables (facts, programs, quarantined and skipped rows) are keyed by lineage (file_key, sheet,
-- excel_row). That key is checked before every publish (warehouse/store.py Staging.check) instead of being declared
-- as a PRIMARY KEY: DuckDB's ART index made bulk loads and per-file deletes several times slower.

CREATE TABLE IF NOT EXISTS dim_agency (
    agency_code              VARCHAR PRIMARY KEY,
    name_en                  VARCHAR NOT NULL,
    name_ar                  VARCHAR,
    fiscal_year_start_month  TINYINT NOT NULL CHECK (fiscal_year_start_month BETWEEN 1 AND 12),
    fiscal_year_label        VARCHAR NOT NULL CHECK (fiscal_year_label IN ('start', 'end')),
    number_locale            VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_country (
    iso3        VARCHAR PRIMARY KEY CHECK (regexp_full_match(iso3, '[A-Z]{3}')),
    iso2        VARCHAR,
    name_en     VARCHAR NOT NULL,
    name_ar     VARCHAR,
    region      VARCHAR,
    subregion   VARCHAR,
    oic_member  BOOLEAN,
    is_former   BOOLEAN NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_category (
    category_code  VARCHAR PRIMARY KEY,
    name_en        VARCHAR NOT NULL,
    name_ar        VARCHAR,
    dac_code       VARCHAR,
    description    VARCHAR
);

CREATE TABLE IF NOT EXISTS dim_fiscal_period (
    agency_code   VARCHAR NOT NULL,
    fiscal_year   SMALLINT NOT NULL,
    period_start  DATE NOT NULL,
    period_end    DATE NOT NULL CHECK (period_end > period_start),
    PRIMARY KEY (agency_code, fiscal_year)
);

CREATE TABLE IF NOT EXISTS fact_funding_line (
    file_key           VARCHAR NOT NULL,
    sheet              VARCHAR NOT NULL,
    excel_row          INTEGER NOT NULL CHECK (excel_row >= 1),
    agency_code        VARCHAR NOT NULL,
    program_code       VARCHAR NOT NULL,
    program_name       VARCHAR,
    country_iso3       VARCHAR,            -- NULL: loaded with a declared warning, waiting in mapping_queue
    category_code      VARCHAR,            -- (as above)
    category_label     VARCHAR,
    stage              VARCHAR NOT NULL CHECK (stage IN ('allocated', 'committed', 'obligated', 'disbursed')),
    fiscal_year        SMALLINT NOT NULL,
    fiscal_year_label  VARCHAR NOT NULL,
    period_start       DATE NOT NULL,
    period_end         DATE NOT NULL,
    transaction_date   DATE,
    amount_original    DOUBLE NOT NULL,
    currency           VARCHAR NOT NULL,
    amount_usd         DOUBLE NOT NULL,
    fx_rate            DOUBLE NOT NULL CHECK (fx_rate > 0),
    fx_rate_date       DATE NOT NULL,
    fx_provider        VARCHAR NOT NULL,
    fx_policy          VARCHAR NOT NULL,
    amount_usd_constant DOUBLE,
    constant_base_year SMALLINT NOT NULL,
    warning_rules      VARCHAR,            -- rules that warned (severity warn) on this line; NULL when none
    file_hash          VARCHAR NOT NULL,
    load_id            VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS dim_program (
    file_key           VARCHAR NOT NULL,
    sheet              VARCHAR NOT NULL,
    excel_row          INTEGER NOT NULL,
    agency_code        VARCHAR NOT NULL,
    program_code       VARCHAR NOT NULL,
    name_en            VARCHAR NOT NULL,
    name_ar            VARCHAR,
    category_code      VARCHAR,
    partner_iso3       VARCHAR[],
    start_date         DATE,
    end_date           DATE,
    status             VARCHAR,
    warning_rules      VARCHAR,
    file_hash          VARCHAR NOT NULL,
    load_id            VARCHAR NOT NULL
);

-- Rows held back by a blocking failure, with their cells as read (JSON), so they can be re-normalised.
CREATE TABLE IF NOT EXISTS quarantine_row (
    file_key    VARCHAR NOT NULL,
    sheet       VARCHAR NOT NULL,
    excel_row   INTEGER NOT NULL,
    agency_code VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,
    raw_json    VARCHAR NOT NULL,
    rules       VARCHAR NOT NULL,
    file_hash   VARCHAR NOT NULL,
    load_id     VARCHAR NOT NULL
);

-- Rows loaded with a declared mapping warning (country or category NULL): their cells as read, so 'dcf replay'
-- completes them once the steward adds the mapping.
CREATE TABLE IF NOT EXISTS warned_row (
    file_key    VARCHAR NOT NULL,
    sheet       VARCHAR NOT NULL,
    excel_row   INTEGER NOT NULL,
    agency_code VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,
    raw_json    VARCHAR NOT NULL,
    rules       VARCHAR NOT NULL,
    file_hash   VARCHAR NOT NULL,
    load_id     VARCHAR NOT NULL
);

-- Rows deliberately not loaded: blank rows and totals rows (with the total the sheet states).
CREATE TABLE IF NOT EXISTS skipped_row (
    file_key       VARCHAR NOT NULL,
    sheet          VARCHAR NOT NULL,
    excel_row      INTEGER NOT NULL,
    reason         VARCHAR NOT NULL CHECK (reason IN ('blank', 'total', 'filtered', 'heading', 'region_heading', 'subregion_heading')),
    label          VARCHAR,
    stated_amount  DOUBLE,
    file_hash      VARCHAR NOT NULL,
    load_id        VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_load (
    load_id           VARCHAR PRIMARY KEY,
    started_at        TIMESTAMP NOT NULL,
    finished_at       TIMESTAMP,
    flow_run_id       VARCHAR,
    run_by            VARCHAR,
    inbox             VARCHAR,
    outcome           VARCHAR NOT NULL CHECK (outcome IN ('success', 'partial', 'nothing_new', 'replay')),
    files_seen        INTEGER NOT NULL,
    files_processed   INTEGER NOT NULL,
    files_unchanged   INTEGER NOT NULL,
    files_failed      INTEGER NOT NULL,
    rows_read         BIGINT NOT NULL,
    rows_loaded       BIGINT NOT NULL,
    rows_quarantined  BIGINT NOT NULL,
    rows_skipped      BIGINT NOT NULL,
    load_seq          BIGINT NOT NULL UNIQUE,
    files_withdrawn   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS audit_refused_entry (
    load_id           VARCHAR NOT NULL,
    entry             VARCHAR NOT NULL,
    agency_code       VARCHAR NOT NULL,
    reason            VARCHAR NOT NULL,
    seen_at           TIMESTAMP NOT NULL,
    PRIMARY KEY (load_id, entry)
);

CREATE TABLE IF NOT EXISTS audit_source_file (
    file_key          VARCHAR NOT NULL,
    file_hash         VARCHAR NOT NULL,
    config_hash       VARCHAR NOT NULL,
    agency_code       VARCHAR NOT NULL,
    kind              VARCHAR,
    path              VARCHAR NOT NULL,
    size_bytes        BIGINT NOT NULL,
    modified_at       TIMESTAMP,
    first_seen_at     TIMESTAMP NOT NULL,
    load_id           VARCHAR NOT NULL,
    is_current        BOOLEAN NOT NULL,
    status            VARCHAR NOT NULL CHECK (status IN ('loaded', 'failed')),
    sheet             VARCHAR,
    header_row        INTEGER,
    rows_read         BIGINT NOT NULL,
    rows_loaded       BIGINT NOT NULL,
    rows_quarantined  BIGINT NOT NULL,
    rows_skipped      BIGINT NOT NULL,
    message           VARCHAR,
    context_json      VARCHAR,          -- how the file was read and normalised (for 'dcf replay')
    archive_path      VARCHAR,          -- the received bytes in the raw archive (content-addressed)
    withdrawn_at      TIMESTAMP,        -- when the file was first missing from the inbox (NULL: present)
    CHECK (rows_read = rows_loaded + rows_quarantined + rows_skipped),
    PRIMARY KEY (file_key, file_hash, config_hash)
);

CREATE TABLE IF NOT EXISTS audit_validation_failure (
    failure_id      VARCHAR PRIMARY KEY,
    file_key        VARCHAR NOT NULL,
    file_hash       VARCHAR NOT NULL,
    agency_code     VARCHAR NOT NULL,
    sheet           VARCHAR NOT NULL,
    excel_row       INTEGER,
    cell            VARCHAR,
    column_name     VARCHAR,
    source_column   VARCHAR,
    value           VARCHAR,
    rule            VARCHAR NOT NULL,
    severity        VARCHAR NOT NULL CHECK (severity IN ('block', 'warn')),
    message         VARCHAR NOT NULL,
    suggestion      VARCHAR,
    status          VARCHAR NOT NULL CHECK (status IN ('open', 'resolved')),
    first_seen_load VARCHAR NOT NULL,
    last_seen_load  VARCHAR NOT NULL,
    first_seen_at   TIMESTAMP NOT NULL,
    last_seen_at    TIMESTAMP NOT NULL,
    resolved_at     TIMESTAMP
);

-- Rates used for closed fiscal years (period ended before the load), frozen: later runs take them from here first,
-- so a closed year's US$ figures do not move when a provider revises its history. `dcf rerate` releases them.
CREATE TABLE IF NOT EXISTS fx_rate_lock (
    currency       VARCHAR NOT NULL,
    policy         VARCHAR NOT NULL CHECK (policy IN ('transaction_date', 'fiscal_period_average')),
    key_start      DATE NOT NULL,
    key_end        DATE NOT NULL,
    fiscal_year    SMALLINT NOT NULL,
    units_per_usd  DOUBLE NOT NULL CHECK (units_per_usd > 0),
    rate_date      DATE NOT NULL,
    provider       VARCHAR NOT NULL,
    locked_at      TIMESTAMP NOT NULL,
    load_id        VARCHAR NOT NULL,
    PRIMARY KEY (currency, policy, key_start, key_end, fiscal_year)
);

-- Validation history: how many failures each load saw, per agency, rule and severity (files processed by that load).
CREATE TABLE IF NOT EXISTS audit_failure_count (
    load_id      VARCHAR NOT NULL,
    agency_code  VARCHAR NOT NULL,
    rule         VARCHAR NOT NULL,
    severity     VARCHAR NOT NULL,
    failures     BIGINT NOT NULL,
    PRIMARY KEY (load_id, agency_code, rule, severity)
);

-- Program records keep their history: one row per version of a program (agency + code), valid from the load that
-- first saw it until the load that saw it change or disappear (valid_to NULL = current).
CREATE TABLE IF NOT EXISTS program_history (
    agency_code    VARCHAR NOT NULL,
    program_code   VARCHAR NOT NULL,
    name_en        VARCHAR NOT NULL,
    name_ar        VARCHAR,
    category_code  VARCHAR,
    partner_iso3   VARCHAR[],
    start_date     DATE,
    end_date       DATE,
    status         VARCHAR,
    attr_hash      VARCHAR NOT NULL,
    file_key       VARCHAR NOT NULL,
    valid_from     TIMESTAMP NOT NULL,
    valid_to       TIMESTAMP,
    load_id        VARCHAR NOT NULL,
    valid_from_seq BIGINT NOT NULL,
    valid_to_seq   BIGINT,
    CHECK (valid_to_seq IS NULL OR valid_to_seq > valid_from_seq)
);
COMMENT ON TABLE program_history IS 'Every version of every program record (agency + program code): valid_from the load that first saw it, valid_to the load that saw it change or disappear (NULL: current version).';
COMMENT ON COLUMN program_history.agency_code IS 'Lead agency code (dim_agency).';
COMMENT ON COLUMN program_history.program_code IS 'Program code as the agency writes it.';
COMMENT ON COLUMN program_history.name_en IS 'Program name in English.';
COMMENT ON COLUMN program_history.name_ar IS 'Program name in Arabic, where given.';
COMMENT ON COLUMN program_history.category_code IS 'Canonical category (dim_category), where given.';
COMMENT ON COLUMN program_history.partner_iso3 IS 'Partner countries, ISO 3166-1 alpha-3 codes.';
COMMENT ON COLUMN program_history.start_date IS 'Program start date.';
COMMENT ON COLUMN program_history.end_date IS 'Program end date.';
COMMENT ON COLUMN program_history.status IS 'Program status as the agency reports it, lower-cased.';
COMMENT ON COLUMN program_history.attr_hash IS 'md5 of the attributes above: a new version starts when it changes.';
COMMENT ON COLUMN program_history.file_key IS 'The program file this version came from (AGENCY/file name).';
COMMENT ON COLUMN program_history.valid_from IS 'When this version was first loaded (local time of the load; a clock moved back can make it later than valid_to: order by valid_from_seq).';
COMMENT ON COLUMN program_history.valid_to IS 'When it was superseded or disappeared (local time); NULL for the current version.';
COMMENT ON COLUMN program_history.load_id IS 'Load that opened this version (audit_load).';
COMMENT ON COLUMN program_history.valid_from_seq IS 'Load sequence (audit_load.load_seq) that opened this version: the order of versions.';
COMMENT ON COLUMN program_history.valid_to_seq IS 'Load sequence that closed it; NULL for the current version.';

-- Reference series from years-across-columns workbooks (e.g. SIPRI); views and comments in 005_reference_series.sql.
CREATE TABLE IF NOT EXISTS ref_series_value (
    dataset            VARCHAR NOT NULL,
    edition            VARCHAR NOT NULL,
    measure            VARCHAR NOT NULL,
    unit               VARCHAR NOT NULL,
    base_unit          VARCHAR NOT NULL,
    entity_type        VARCHAR NOT NULL,
    entity_name        VARCHAR NOT NULL,
    country_iso3       VARCHAR,
    region             VARCHAR,
    subregion          VARCHAR,
    year               INTEGER NOT NULL,
    value              DOUBLE,
    value_base         DOUBLE,
    status             VARCHAR NOT NULL,
    raw_value          VARCHAR,
    price_base_year    INTEGER,
    notes              VARCHAR,
    footnote_symbols   VARCHAR,
    footnote_numbers   INTEGER[],
    currency           VARCHAR,
    fiscal_year_basis  VARCHAR,
    reporting_year     VARCHAR,
    omitted_countries  VARCHAR,
    file_key           VARCHAR NOT NULL,
    sheet              VARCHAR NOT NULL,
    excel_row          INTEGER NOT NULL,
    cell               VARCHAR,
    file_hash          VARCHAR NOT NULL,
    load_id            VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS ref_series_footnote (
    dataset    VARCHAR NOT NULL,
    edition    VARCHAR NOT NULL,
    mark       VARCHAR NOT NULL,
    text       VARCHAR NOT NULL,
    file_key   VARCHAR NOT NULL,
    sheet      VARCHAR NOT NULL,
    excel_row  INTEGER NOT NULL,
    file_hash  VARCHAR NOT NULL,
    load_id    VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS ref_series_edition (
    dataset          VARCHAR NOT NULL,
    edition          VARCHAR NOT NULL,
    file_key         VARCHAR NOT NULL,
    published_year   INTEGER,
    first_year       INTEGER,
    last_year        INTEGER,
    price_base_year  INTEGER,
    sheets           VARCHAR[],
    sheets_ignored   VARCHAR[],
    file_hash        VARCHAR NOT NULL,
    load_id          VARCHAR NOT NULL,
    loaded_at        TIMESTAMP NOT NULL,
    PRIMARY KEY (dataset, edition)
);

-- Datasets of kind 'records' (any long-format table whose columns a source YAML declares with a type): one row per
-- record and field, the value in the column of its storage type. View records_<dataset> shows one row per record.
CREATE TABLE IF NOT EXISTS record_value (
    dataset       VARCHAR NOT NULL,
    file_key      VARCHAR NOT NULL,
    sheet         VARCHAR NOT NULL,
    excel_row     INTEGER NOT NULL,
    field         VARCHAR NOT NULL,
    text_value    VARCHAR,
    number_value  DOUBLE,
    date_value    DATE,
    file_hash     VARCHAR NOT NULL,
    load_id       VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS record_field (
    dataset              VARCHAR NOT NULL,
    file_key             VARCHAR NOT NULL,
    ordinal              INTEGER NOT NULL,
    field                VARCHAR NOT NULL,
    storage              VARCHAR NOT NULL CHECK (storage IN ('text', 'integer', 'decimal', 'date')),
    declared_type        VARCHAR NOT NULL,
    unit                 VARCHAR,
    description          VARCHAR,
    dataset_description  VARCHAR,
    load_id              VARCHAR NOT NULL
);
