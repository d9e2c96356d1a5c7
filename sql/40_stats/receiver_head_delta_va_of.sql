-- The join step of receiver_head_delta_va: the receiver heads of a relation named by
-- receivers (receiver_heads' columns: the paper's setting, ranked by mean kurtosis) with
-- their rows of a relation named by consistency (head_consistency's columns), exactly as
-- receiver_head_delta_va (which is this macro over receiver_heads(k) and head_consistency).
-- Parameters: consistency, receivers (relation names; default the views head_consistency
-- and receiver_heads).
--- tag: target tag
--- model: model name
--- rank: receiver-head rank, 1 = highest mean kurtosis
--- layer: layer index
--- head: query head index
--- mean_kurtosis: mean over rollouts of the head's kurtosis (paper's setting)
--- n_rollouts_kurtosis: rollouts with a defined kurtosis for this head
--- n_rollouts: rollouts where the head's ΔVA is defined
--- mean_delta_va_vert: mean ΔVA over those rollouts
--- sd_delta_va_vert: sample standard deviation of ΔVA (n - 1)
--- t_statistic: mean / (sd / sqrt(n))
--- share_same_sign: share of rollouts whose ΔVA has the sign of the mean
--- permutations: K, the number of permutations (or sign flips) drawn
--- p_value: two-sided permutation p-value of the mean ΔVA of this head (head_consistency)
--- p_value_fwer: family-wise (max-T over every head of the chosen layers) p-value
create or replace macro receiver_head_delta_va_of({{ params: consistency, receivers }}) as table
with receivers as (
    select * from query_table(receivers)
),

consistency as (
    select * from query_table(consistency)
)

select
    consistency.tag,
    receivers.model,
    receivers.rank,
    receivers.layer,
    receivers.head,
    receivers.mean_kurtosis,
    receivers.n_rollouts as n_rollouts_kurtosis,
    consistency.n_rollouts,
    consistency.mean_delta_va_vert,
    consistency.sd_delta_va_vert,
    consistency.t_statistic,
    consistency.share_same_sign,
    consistency.permutations,
    consistency.p_value,
    consistency.p_value_fwer
from receivers
inner join consistency using (model, layer, head)
order by consistency.tag, receivers.model, receivers.rank;

create or replace view receiver_head_delta_va_of as
select * from receiver_head_delta_va_of();
