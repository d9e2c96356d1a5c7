-- The stored attention cells A[i, j] (METRICS.md §3), lower triangle j <= i only:
-- every cell with j > i is exactly 0 and absent. Stored triangles are dense: each
-- (i, j) with j <= i < N is present, zeros included (the metrics count on it, §5).
--- model: model name
--- rollout_id: rollout (rollouts.rollout_id)
--- layer: layer index
--- head: query head index
--- i: source (query) sentence, original index
--- j: target (key) sentence, original index, j <= i
--- value: A[i, j], the sentence-averaged attention
create or replace view attention_cells as
select
    attention.model,
    attention.rollout_id,
    attention.layer,
    attention.head,
    attention.i,
    attention.j,
    attention.value
from attention;
