-- The PostgreSQL backend's schema. Every statement can run again on a
-- database that has it already; `csvd serve postgres://…` runs them all at
-- start, under an advisory lock, so instances starting at once agree.
--
-- Tables of csvd are rows here, not PostgreSQL tables: column names are
-- data (any text a CSV header holds, of any length), never identifiers, and
-- a table's columns grow by appending to an array.

-- Only warnings and errors: "already exists, skipping" is the usual case.
SET LOCAL client_min_messages = warning;

-- One per database: `epoch` is mixed into every version the backend hands
-- out, so a database made anew never repeats the tags of an older one.
CREATE TABLE IF NOT EXISTS csvd_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO csvd_meta (key, value)
VALUES ('epoch', md5(random()::text || clock_timestamp()::text)),
       ('schema', '2')
ON CONFLICT (key) DO NOTHING;
-- Schema 2 added the change feed's tables (below), to databases of 1 too.
UPDATE csvd_meta SET value = '2' WHERE key = 'schema' AND value = '1';

-- Table versions: every write takes the next value.
CREATE SEQUENCE IF NOT EXISTS csvd_versions;
-- Keys of tables: a name deleted and made again is another table.
CREATE SEQUENCE IF NOT EXISTS csvd_keys;

-- One row per csvd table. A write locks its table's row (FOR UPDATE) for
-- its transaction: writes to one table are serialised across every
-- instance, which is what makes If-Match and id assignment atomic.
CREATE TABLE IF NOT EXISTS csvd_tables (
    name text PRIMARY KEY,
    key bigint NOT NULL UNIQUE,
    -- The header, in order.
    columns text[] NOT NULL,
    -- 0-based position of the id column in `columns`.
    id_col integer NOT NULL,
    version bigint NOT NULL,
    modified timestamptz NOT NULL,
    row_count bigint NOT NULL,
    -- Largest canonical integer id ever given: ids are never given twice.
    max_int_id bigint NOT NULL,
    -- The next row's place in the table's order.
    next_seq bigint NOT NULL
);

-- The rows of every csvd table. `cells` follow the table's columns; a row
-- written before a column was added is shorter, and its missing cells are
-- empty. Beside each cell, computed by csvd when the row is written:
-- `nums`, its number by the typing rule (`30`, `-2.5`, `true` as 1; not
-- `007`), which comparison filters use, and `sorts`, its number as a
-- column of numbers sorts it (`007` is 7, empty is 0); NULL for text.
CREATE TABLE IF NOT EXISTS csvd_rows (
    tab bigint NOT NULL,
    id text NOT NULL,
    seq bigint NOT NULL,
    cells text[] NOT NULL,
    nums float8[] NOT NULL,
    sorts float8[] NOT NULL,
    PRIMARY KEY (tab, id)
);
CREATE INDEX IF NOT EXISTS csvd_rows_order ON csvd_rows (tab, seq);

-- The change feed, one order for every instance (`pg/feed.rs`). The one
-- row of `csvd_feed` holds the next sequence number to give: a write's
-- transaction takes its numbers with an `UPDATE` of it just before its
-- commit, so the row's lock hands numbers out in commit order, and a
-- transaction rolled back gives its numbers back.
CREATE TABLE IF NOT EXISTS csvd_feed (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    next bigint NOT NULL
);
INSERT INTO csvd_feed (one, next) VALUES (true, 1) ON CONFLICT (one) DO NOTHING;
-- One row per write: its changes, numbered `first` to `first + n - 1`,
-- encoded by csvd (table, columns, each row before and after). Rows older
-- than the feed's retention are pruned from time to time.
CREATE TABLE IF NOT EXISTS csvd_changes (
    first bigint PRIMARY KEY,
    n integer NOT NULL,
    payload bytea NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);

-- Declared columns: a table's CSV on the Web table description, as JSON
-- text, keyed by the table's key (a table made again starts undeclared).
CREATE TABLE IF NOT EXISTS csvd_schemas (
    tab bigint PRIMARY KEY,
    doc text NOT NULL
);

-- Tables kept as one object (json-server's singular resources, such as
-- db.json's `"profile": {...}`): a mark beside the table, by name.
-- `own_id`: the object names its own id; otherwise the id column was added
-- by csvd and is not shown.
CREATE TABLE IF NOT EXISTS csvd_singular (
    name text PRIMARY KEY,
    own_id boolean NOT NULL
);
