-- Black-box beside white-box, per (model, rollout, sentence): a numeric sentence field
-- (numeric_fields: by default the first counterfactual importance field present) and the
-- sentence's receiver score (receiver_scores), with its text, tags and dependency degrees.
-- Sentences without the field are left out; the receiver score is NULL where undefined
-- (the last proximity_ignore sentences). The data of the reports' scatter plot.
-- Parameters: field (as numeric_fields), k and the receiver heads' setting, only_rollouts
-- (as receiver_scores).
--- model: model name
--- rollout_id: rollout
--- idx: original sentence index
--- text: the sentence
--- tags: its tags, sorted
--- field: the sentence field
--- value: the field's number
--- receiver_score: mean v_c over the k receiver heads; NULL when undefined
--- in_degree: later sentences that depend on it (depends_on)
--- out_degree: earlier sentences it depends on
create or replace macro sentence_field_scores({{ params: field, k, tag, @metric, only_rollouts }}) as table
select
    receivers.model,
    receivers.rollout_id,
    receivers.idx,
    graph.text,
    graph.tags,
    fields.field,
    fields.value,
    receivers.receiver_score,
    graph.in_degree,
    graph.out_degree
from
    receiver_scores({{ pass: k, tag, @metric, only_rollouts }}) as receivers
inner join numeric_fields(field := field) as fields using (rollout_id, idx)
inner join sentence_graph as graph using (rollout_id, idx)
order by receivers.model, receivers.rollout_id, receivers.idx;

create or replace view sentence_field_scores as
select * from sentence_field_scores();
