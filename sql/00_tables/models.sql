-- One row per model whose attention the warehouse holds.
create table if not exists models (
    model       varchar not null,  -- name used in every attention row
    source      varchar,           -- Hub id or local directory it was loaded from
    revision    varchar,           -- commit hash or 'local'
    n_layers    integer not null,  -- L
    n_heads     integer not null,  -- H (query heads)
    n_kv_heads  integer,
    head_dim    integer,
    config      json
);
