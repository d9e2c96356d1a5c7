-- The rows of kept_scores for the stored cells of one model and rollout: what the
-- warehouse writes, in the transaction that stores the rollout's attention, for every
-- stored layer (warehouse/catalog.py), for the two sets of sql/defaults.py KEPT_SETS
-- (a test compares these rows with the metrics computed from cells).
-- Tag-free: no sentence is a target (tag := NULL), so column sums hold every row.
-- Parameters: only_model, only_rollouts (NULL: every model / rollout).
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- idx: original sentence index
--- vertical_score: v_c of the analysed column idx (ranking set); NULL outside it
--- n_valid_rows: valid cells of column idx (ranking set)
--- column_sum: Σ B[r, idx] over every analysed row r (ranking set's trim)
--- row_sum: Σ B[idx, c] over every analysed column c (ranking set's trim)
--- receiver_score: v_c of column idx (receiver set)
create or replace macro kept_scores_of({{ params: only_model, only_rollouts }}) as table
with ranking as (
    select *
    from
        column_scores(
            tag := null, {{ kept: ranking }}, all_layers := true,
            {{ pass: only_model, only_rollouts }}
        )
),

receiver as (
    select *
    from
        column_scores(
            tag := null, {{ kept: receiver }}, all_layers := true,
            {{ pass: only_model, only_rollouts }}
        )
),

row_sums as (
    select
        cells.model,
        cells.rollout_id,
        cells.layer,
        cells.head,
        cells.i as idx,
        sum(cells.value::double) as row_sum
    from
        analysed_cells(
            tag := null, trim := true, all_layers := true, {{ pass: only_model, only_rollouts }}
        ) as cells
    group by cells.model, cells.rollout_id, cells.layer, cells.head, cells.i
)

select
    receiver.model,
    receiver.rollout_id,
    receiver.layer,
    receiver.head,
    receiver.idx,
    ranking.vertical_score,
    ranking.n_valid_rows,
    ranking.sum_from_target_rows + ranking.sum_from_other_rows as column_sum,
    row_sums.row_sum,
    receiver.vertical_score as receiver_score
from receiver
left join ranking using (model, rollout_id, layer, head, idx)
left join row_sums using (model, rollout_id, layer, head, idx);

create or replace view kept_scores_of as
select * from kept_scores_of();
