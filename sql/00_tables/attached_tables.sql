-- User tables registered with `cli.py attach`: each is a view over an external file.
create table if not exists attached_tables (
    name        varchar not null,
    path        varchar not null,
    format      varchar not null,  -- 'csv' or 'parquet'
    attached_at timestamp not null
);
