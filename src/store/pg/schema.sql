-- The PostgreSQL backend's schema. Every statement can run again on a
-- database that has it already; `csvd serve postgres://…` runs them all at
-- start, under an advisory lock, so instances starting at once agree.
--
-- Tables of csvd are rows here, not PostgreSQL tables: column names are
-- data (any text a CSV header holds, of any length), never identifiers, and
-- a table's columns grow by appending to an array.

-- One per database: `epoch` is mixed into every version the backend hands
-- out, so a database made anew never repeats the tags of an older one.
CREATE TABLE IF NOT EXISTS csvd_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO csvd_meta (key, value)
VALUES ('epoch', md5(random()::text || clock_timestamp()::text)),
       ('schema', '1')
ON CONFLICT (key) DO NOTHING;

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
-- empty.
CREATE TABLE IF NOT EXISTS csvd_rows (
    tab bigint NOT NULL,
    id text NOT NULL,
    seq bigint NOT NULL,
    cells text[] NOT NULL,
    PRIMARY KEY (tab, id)
);
CREATE INDEX IF NOT EXISTS csvd_rows_order ON csvd_rows (tab, seq);

-- The typing rule's numbers (and booleans as 1 and 0), as filters compare
-- them: `30`, `-2.5`, but not `007`, `1.50`, `-0` or `1e3`. NULL for text.
-- Numbers of more than 15 significant digits are compared as text here
-- (the file store keeps those that survive a trip through a double).
CREATE OR REPLACE FUNCTION csvd_typed(c text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN c = 'true' THEN 1::float8
        WHEN c = 'false' THEN 0::float8
        WHEN c ~ '^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$' AND c <> '-0'
             AND CASE
                     WHEN c ~ '^-?0\.' THEN length(ltrim(split_part(c, '.', 2), '0'))
                     ELSE length(replace(replace(c, '-', ''), '.', ''))
                 END <= 15
            THEN c::float8
    END
$$;

-- A cell's value among numbers when a column sorts as numbers: as
-- JavaScript's Number() reads it (`007` is 7, empty is 0, ` 2.5 ` is 2.5,
-- `1e3` is 1000), booleans as 1 and 0. NULL for text that is no number.
-- `t` is the cell without the white space around it.
CREATE OR REPLACE FUNCTION csvd_loose(c text, t text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN c = 'true' THEN 1::float8
        WHEN c = 'false' THEN 0::float8
        WHEN t = '' THEN 0::float8
        WHEN t ~ '^[+-]?[0-9]{1,15}(\.[0-9]{0,15})?$' THEN t::float8
        WHEN t ~ '^[+-]*Infinity$' THEN
            CASE WHEN left(t, 1) = '-' THEN '-Infinity'::float8 ELSE 'Infinity'::float8 END
        WHEN t ~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?$' THEN
            CASE
                WHEN t::numeric > 1.7976931348623157e308 THEN 'Infinity'::float8
                WHEN t::numeric < -1.7976931348623157e308 THEN '-Infinity'::float8
                WHEN abs(t::numeric) < 1e-307 THEN 0::float8
                ELSE t::numeric::float8
            END
    END
$$;

CREATE OR REPLACE FUNCTION csvd_sort_number(c text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT csvd_loose(c, btrim(c, E' \t\n\r\f\x0B'))
$$;
