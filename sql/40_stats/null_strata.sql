-- The strata of the label permutations (docs/STATISTICS.md §2): per rollout and scored
-- column (is_scored_column), the group of columns its labels may be exchanged with, and
-- the sentence length the residual scores are adjusted for.
-- position_stratum: the scored columns of a rollout are cut into g = max(1, round(n_scored
-- / 24)) (half rounds up) consecutive blocks of relative position, block = floor(c g /
-- n_scored).
-- stratum: the stratum of the chosen null: position_stratum for null 'position', 0 for
-- null 'uniform' (one stratum: every scored column is exchangeable, the earlier test).
-- log_length: ln(1 + n_chars) of the sentence when every scored sentence of the rollout
-- has a stored text; 0 otherwise (no length adjustment: the rollout has no lengths).
-- Parameters: null_model ('position' or 'uniform'), proximity_ignore, trim, only_rollouts.
--- rollout_id: rollout
--- c: analysed column index (scored columns only)
--- idx: original sentence index of column c
--- n_scored: number of scored columns of the rollout
--- position_stratum: position block (whatever the null)
--- stratum: stratum of the chosen null (0 for 'uniform')
--- n_stratum: scored columns in that stratum
--- log_length: ln(1 + n_chars), or 0 when the rollout lacks a sentence's text
--- problem_id: the rollout's problem (rollouts.problem_id)
create or replace macro null_strata({{ params: null_model, proximity_ignore, trim, only_rollouts }}) as table
with scored as (
    select
        sentences.rollout_id,
        sentences.r as c,
        sentences.idx,
        sentences.n_chars,
        sentences.problem_id,
        count(*) over (partition by sentences.rollout_id) as n_scored,
        count(sentences.n_chars) over (partition by sentences.rollout_id) as n_with_text
    from analysed_tags(tag := null, {{ pass: trim, only_rollouts }}) as sentences
    where is_scored_column(sentences.r, sentences.n_sentences, proximity_ignore)
),

strata as (
    select
        scored.*,
        floor(
            scored.c * greatest(1, round(scored.n_scored / 24)) / scored.n_scored
        )::integer as position_stratum,
        case when scored.n_with_text = scored.n_scored then ln(1 + scored.n_chars) else 0 end
            as log_length
    from scored
),

chosen as (
    select
        strata.*,
        case
            when null_model = 'position' then strata.position_stratum
            when null_model = 'uniform' then 0
            else error('null_model must be ''position'' or ''uniform'' (docs/STATISTICS.md §2)')
        end as stratum
    from strata
)

select
    chosen.rollout_id,
    chosen.c,
    chosen.idx,
    chosen.n_scored::integer as n_scored,
    chosen.position_stratum::integer as position_stratum,
    chosen.stratum::integer as stratum,
    (count(*) over (partition by chosen.rollout_id, chosen.stratum))::integer as n_stratum,
    chosen.log_length::double as log_length,
    chosen.problem_id
from chosen;

create or replace view null_strata as
select * from null_strata();
