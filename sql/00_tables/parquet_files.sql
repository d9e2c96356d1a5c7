-- Manifest (catalog) of the Parquet store: the files that hold the current data, with
-- their size, row count and checksum as written (`cli.py check` compares them). Files
-- under parquet/ with the warehouse's own names that are not listed here are leftovers
-- of an interrupted write; nothing else under the directory is ever deleted.
create table if not exists parquet_files (
    table_name varchar not null,
    rollout_id varchar not null,
    model      varchar,            -- null for model-independent tables
    path       varchar not null,   -- relative to the warehouse directory
    size_bytes bigint,             -- recorded when written (null: written before v2)
    row_count  bigint,             -- rows in the file
    sha256     varchar             -- checksum of the file's bytes
);
