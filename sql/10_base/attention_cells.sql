-- The stored attention cells A[i, j] (METRICS.md §3), lower triangle j <= i only:
-- every cell with j > i is exactly 0 and absent. Stored triangles are dense: each
-- (i, j) with j <= i < N is present, zeros included (the metrics count on it, §5).
-- Parameter: unscored_only (true: only the cells without kept scores, i.e. those kept
-- inside the DuckDB file, attention_inline; the Parquet files are then not read).
--- model: model name
--- rollout_id: rollout (rollouts.rollout_id)
--- layer: layer index
--- head: query head index
--- i: source (query) sentence, original index
--- j: target (key) sentence, original index, j <= i
--- value: A[i, j], the sentence-averaged attention
create or replace macro attention_cells({{ params: unscored_only }}) as table
select
    stored.model,
    stored.rollout_id,
    stored.layer,
    stored.head,
    stored.i,
    stored.j,
    stored.value
from attention_parquet as stored
where not unscored_only
union all
select
    inline.model,
    inline.rollout_id,
    inline.layer,
    inline.head,
    inline.i,
    inline.j,
    inline.value
from attention_inline as inline;

create or replace view attention_cells as
select * from attention_cells();
