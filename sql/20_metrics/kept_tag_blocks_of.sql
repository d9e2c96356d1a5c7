-- The rows of kept_tag_blocks for the stored cells of one model and rollout (the SQL
-- definition; the writer computes the same numbers from each layer as it streams, and a
-- test compares the two). Every tag of the rollout, trim of the ranking set.
-- Parameters: only_model, only_rollouts (NULL: every model / rollout).
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- tag: a tag of the rollout
--- block_sum: Σ B[r, c] over analysed rows r and columns c <= r both carrying the tag
create or replace macro kept_tag_blocks_of({{ params: only_model, only_rollouts }}) as table
with tagged as (
    select
        analysed.tag,
        analysed.rollout_id,
        analysed.idx
    from analysed_tags(all_tags := true, trim := true) as analysed
    where
        analysed.is_target
        and is_listed(analysed.rollout_id, only_rollouts)
),

pairs as materialized (
    select
        block_row.tag,
        block_row.rollout_id,
        block_row.idx as i,
        block_column.idx as j
    from tagged as block_row
    inner join tagged as block_column
        on block_column.tag = block_row.tag
        and block_column.rollout_id = block_row.rollout_id
        and block_column.idx <= block_row.idx
),

cells as (
    select *
    from attention_cells as cells
    where is_in_scope(cells.model, cells.rollout_id, only_model, only_rollouts)
)

select
    cells.model,
    cells.rollout_id,
    cells.layer,
    cells.head,
    pairs.tag,
    sum(cells.value::double) as block_sum
from cells
inner join pairs using (rollout_id, i, j)
group by cells.model, cells.rollout_id, cells.layer, cells.head, pairs.tag;

create or replace view kept_tag_blocks_of as
select * from kept_tag_blocks_of();
