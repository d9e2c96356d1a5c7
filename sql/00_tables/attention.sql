-- Sentence-averaged attention A[i, j] (METRICS.md §3), long form, lower triangle only:
-- cells with j > i are exactly 0 and are not stored; every consumer treats them as 0.
create table if not exists attention (
    model      varchar  not null,
    rollout_id varchar  not null,
    layer      smallint not null,
    head       smallint not null,
    i          integer  not null,  -- source (query) sentence, original index
    j          integer  not null,  -- target (key) sentence, original index, j <= i
    value      float    not null
);
