-- One row per command that wrote to the warehouse.
create table if not exists ingest_log (
    run_id       varchar not null,
    command      varchar not null,  -- 'load', 'ingest', ...
    started_at   timestamp not null,
    finished_at  timestamp,
    model        varchar,
    parameters   json,
    code_version varchar,
    n_ok         integer,
    n_skipped    integer,
    n_failed     integer,
    duration_s   double,
    outcome      varchar,           -- 'running' (until it ends; left so if the process died),
                                    -- then 'ok', 'partial', 'failed', 'interrupted'
    message      varchar
);
