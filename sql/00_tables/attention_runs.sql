-- One row per (model, rollout) attention currently stored: what produced it.
create table if not exists attention_runs (
    model        varchar not null,
    rollout_id   varchar not null,
    fingerprint  varchar not null,  -- hash of text, sentences, model, revision, dtype, capture parameters
    text_source  varchar not null,
    dtype        varchar not null,
    device       varchar,
    n_tokens     integer not null,
    query_block  integer,
    duration_s   double,
    parameters   json,
    code_version varchar,
    ingested_at  timestamp not null
);
