-- Manifest of the Parquet store: the files that hold the current data. Files under
-- parquet/ that are not listed here are leftovers of an interrupted write.
create table if not exists parquet_files (
    table_name varchar not null,
    rollout_id varchar not null,
    model      varchar,            -- null for model-independent tables
    path       varchar not null    -- relative to the warehouse directory
);
