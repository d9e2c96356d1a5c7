-- Every stored attention cell A[i, j] (METRICS.md §3), lower triangle only: the Parquet
-- files of the warehouse (attention_parquet) and any cells kept inside the DuckDB file
-- (attention_inline). The one relation to read the cells from, in SQL or the shell.
--- model: model name
--- rollout_id: rollout (rollouts.rollout_id)
--- layer: layer index
--- head: query head index
--- i: source (query) sentence, original index
--- j: target (key) sentence, original index, j <= i
--- value: A[i, j], the sentence-averaged attention
create or replace view attention as
select * from attention_parquet
union all
select * from attention_inline;
