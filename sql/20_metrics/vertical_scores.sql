-- Vertical (receiver) score v_c of each analysed column (METRICS.md §5), per rollout,
-- layer and head. Parameters: as column_scores (tag, proximity_ignore, control_depth,
-- score_type, trim, layers, all_layers, only_rollouts). v_c is NULL (the spec's NaN) in the last p columns.
-- With a kept set of parameters (uses_kept_scores: the ranking or the receiver set) the
-- scores of rollouts whose attention is in Parquet come from kept_scores (the receiver
-- set's column c has n - c - p valid rows: the stored triangle is dense); other cells are
-- scored here.
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- c: analysed column index
--- idx: original sentence index of column c
--- is_target: sentence idx carries the target tag (m[c])
--- vertical_score: v_c; NULL when column c has no valid cell
--- n_valid_rows: number of valid cells in column c (rows r >= c + p)
create or replace macro vertical_scores({{ params: tag, @metric, only_rollouts }}) as table
with scores as (
    select
        kept.model,
        kept.rollout_id,
        kept.layer,
        kept.head,
        kept.c,
        kept.idx,
        kept.is_target,
        case when trim then kept.vertical_score else kept.receiver_score end as vertical_score,
        case
            when trim then kept.n_valid_rows
            else greatest(0, kept.n_sentences - kept.c - proximity_ignore)
        end as n_valid_rows
    from
        tagged_kept_scores({{ pass: tag, trim, layers, all_layers, only_rollouts }}) as kept
    -- the two sets differ in trim
    where
        uses_kept_scores('ranking', proximity_ignore, control_depth, score_type, trim)
        or uses_kept_scores('receiver', proximity_ignore, control_depth, score_type, trim)
    union all
    select
        computed.model,
        computed.rollout_id,
        computed.layer,
        computed.head,
        computed.c,
        computed.idx,
        computed.is_target,
        computed.vertical_score,
        computed.n_valid_rows
    from
        column_scores(
            unscored_only := uses_kept_scores(
                'ranking', proximity_ignore, control_depth, score_type, trim
            ) or uses_kept_scores('receiver', proximity_ignore, control_depth, score_type, trim),
            {{ pass: tag, @metric, only_rollouts }}
        ) as computed
)

select
    scores.model,
    scores.rollout_id,
    scores.layer,
    scores.head,
    scores.c,
    scores.idx,
    scores.is_target,
    scores.vertical_score,
    scores.n_valid_rows
from scores;

create or replace view vertical_scores as
select * from vertical_scores();
