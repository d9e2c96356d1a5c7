-- Per analysed column c of each (rollout, layer, head): the vertical score v_c
-- (METRICS.md §5) and the column sums of B from target and from other rows that the
-- matrix means of §6 need. One pass over the stored cells serves vertical_scores,
-- head_stats and receiver_head_kurtosis.
-- Parameters: tag, trim, layers, all_layers (as analysed_cells); proximity_ignore p >= 0
-- (valid cells: c <= r - p; p < 0 is an error); control_depth (rank-normalise each row's
-- valid values, ties averaged, divided by the row's valid count); score_type 'mean' or
-- 'median' (anything else is an error).
-- v_c is NULL (the spec's NaN) when column c has no valid cell (the last p columns).
-- Row r has r + 1 stored cells (c = 0..r; dense triangles) of which r - p + 1 are valid.
-- unscored_only, only_model, only_rollouts: as analysed_cells (which cells are read).
-- This macro always reads cells; the metrics above read kept_scores when they can.
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- c: analysed column index
--- idx: original sentence index of column c
--- is_target: sentence idx carries the target tag (m[c])
--- vertical_score: v_c, mean or median of the (ranked) valid values of column c; NULL when none
--- n_valid_rows: number of valid cells in column c (rows r >= c + p)
--- sum_from_target_rows: sum of B[r, c] over analysed rows r with m[r] true (0 if none)
--- sum_from_other_rows: sum of B[r, c] over analysed rows r with m[r] false (0 if none)
--- n_sentences: n, analysed sentences of the rollout
--- n_va: target sentences among the analysed ones
create or replace macro column_scores(
    {{ params: tag, @metric, unscored_only, only_model, only_rollouts }}
) as table
with cells as not materialized (
    select
        analysed.model_key,
        analysed.rollout_key,
        analysed.row_key,
        analysed.layer,
        analysed.head,
        analysed.r,
        analysed.c,
        analysed.value,
        analysed.row_is_target,
        analysed.c <= analysed.r - proximity_ignore as is_valid
    from
        analysed_cells(
            {{ pass: tag, trim, layers, all_layers, unscored_only, only_model, only_rollouts }}
        ) as analysed
    -- parameter check (error() is not folded: it raises as soon as a cell flows)
    where
        case
            when proximity_ignore is null or proximity_ignore < 0
                then error('proximity_ignore must be an integer >= 0 (METRICS.md §5)')
            else true
        end
),

-- control_depth: invalid cells sort after the valid ones of their row (as +infinity;
-- attention values are finite), so rank() and cume_dist() * (r + 1) count only valid
-- values: rank = 1 + #(< v), cume = #(<= v); the average rank of ties is their mean.
-- Integer partition keys (no strings) keep the sort fast.
depth_scored as (
    select
        cells.*,
        case
            when cells.is_valid
                then (
                    rank() over row_order
                    + round(cume_dist() over row_order * (cells.r + 1))
                ) / (2.0 * (cells.r - proximity_ignore + 1))
        end as score
    from cells
    where
        case
            when control_depth is null then error('control_depth must be true or false')
            else control_depth
        end
    window row_order as (
        partition by cells.model_key, cells.row_key, cells.layer, cells.head
        order by case when cells.is_valid then cells.value else 'infinity'::float end
    )
),

raw_scored as (
    select
        cells.*,
        case when cells.is_valid then cells.value::double end as score
    from cells
    where not control_depth
),

scored as not materialized (
    select * from depth_scored
    union all
    select * from raw_scored
),

-- One aggregation for both score types; the median is list_median over a list whose
-- filter is constant false for the mean (empty lists): DuckDB's median() states blow up
-- memory here (many groups).
columns as (
    select
        scored.model_key,
        scored.rollout_key,
        scored.layer,
        scored.head,
        scored.c,
        count(scored.score) as n_valid_rows,
        case
            when score_type = 'mean' then avg(scored.score)
            else list_median(
                list(scored.score) filter (where score_type = 'median' and scored.score is not null)
            )
        end as vertical_score,
        coalesce(sum(scored.value::double) filter (where scored.row_is_target), 0)
            as sum_from_target_rows,
        coalesce(sum(scored.value::double) filter (where not scored.row_is_target), 0)
            as sum_from_other_rows
    from scored
    where
        case
            when score_type in ('mean', 'median') then true
            else error('score_type must be ''mean'' or ''median'' (METRICS.md §5)')
        end
    group by scored.model_key, scored.rollout_key, scored.layer, scored.head, scored.c
)

select
    model_names.model,
    column_sentences.rollout_id,
    columns.layer,
    columns.head,
    columns.c,
    column_sentences.idx,
    column_sentences.is_target,
    columns.vertical_score,
    columns.n_valid_rows,
    columns.sum_from_target_rows,
    columns.sum_from_other_rows,
    column_sentences.n_sentences,
    column_sentences.n_va
from columns
inner join analysed_sentences({{ pass: tag, trim }}) as column_sentences
    on column_sentences.rollout_key = columns.rollout_key
    and column_sentences.r = columns.c
inner join representative_layers as model_names
    on model_names.model_key = columns.model_key;

create or replace view column_scores as
select * from column_scores();
