-- Receiver-head kurtosis (METRICS.md §8): per (model, rollout, layer, head), the Fisher
-- excess kurtosis, population (biased) form, of that head's vertical scores v_c, NULL
-- scores omitted; equals scipy.stats.kurtosis(v, fisher=True, bias=True) on the defined v.
-- Two-pass central moments m2, m4 (not power sums); as scipy, the kurtosis is NULL (NaN)
-- when m2 <= (eps * mean)^2 (constant input), and when no score is defined.
-- Parameters: as column_scores, but the defaults are the paper's setting (§8):
-- proximity_ignore 4, control_depth false, trim false, all_layers true (every stored
-- layer; pass all_layers := false for the representative layers or a layers list).
-- The scores are vertical_scores' (kept scores with the receiver set of parameters);
-- only_rollouts (NULL: every rollout; a list of ids: those rollouts' rows alone, as the
-- kurtosis is per rollout).
--- model: model name
--- rollout_id: rollout
--- layer: layer index
--- head: query head index
--- kurtosis: Fisher excess kurtosis (population form) of the defined vertical scores; NULL if undefined
--- n_scores: number of defined vertical scores used
create or replace macro receiver_head_kurtosis({{ params: tag, @metric, only_rollouts }}) as table
with centered as (
    select
        scores.*,
        scores.vertical_score - avg(scores.vertical_score) over head_scores as deviation,
        avg(scores.vertical_score) over head_scores as head_mean
    from vertical_scores({{ pass: tag, @metric, only_rollouts }}) as scores
    window head_scores as (
        partition by scores.model, scores.rollout_id, scores.layer, scores.head
    )
),

moments as (
    select
        centered.model,
        centered.rollout_id,
        centered.layer,
        centered.head,
        count(centered.vertical_score) as n_scores,
        any_value(centered.head_mean) as head_mean,
        avg(centered.deviation * centered.deviation) as m2,
        avg(centered.deviation * centered.deviation * centered.deviation * centered.deviation)
            as m4
    from centered
    group by centered.model, centered.rollout_id, centered.layer, centered.head
)

select
    moments.model,
    moments.rollout_id,
    moments.layer,
    moments.head,
    case
        when moments.m2 > power(2.220446049250313e-16 * moments.head_mean, 2)
            then moments.m4 / (moments.m2 * moments.m2) - 3.0
    end as kurtosis,
    moments.n_scores
from moments;

create or replace view receiver_head_kurtosis as
select * from receiver_head_kurtosis();
