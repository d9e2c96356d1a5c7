-- Attention cells A[i, j] (METRICS.md §3) kept inside the DuckDB file: long form, lower
-- triangle only (cells with j > i are exactly 0 and are not stored). The warehouse writer
-- never uses it: its cells live in Parquet files (attention_parquet). Cells inserted here
-- by SQL (hand-made test matrices, small external data) have no kept scores, so every
-- metric computes from them directly. This is also the one definition of a cell's columns
-- and types: the Parquet files are written with the schema of this table.
create table if not exists attention_inline (
    model      varchar  not null,
    rollout_id varchar  not null,
    layer      smallint not null,
    head       smallint not null,
    i          integer  not null,  -- source (query) sentence, original index
    j          integer  not null,  -- target (key) sentence, original index, j <= i
    value      float    not null
);
