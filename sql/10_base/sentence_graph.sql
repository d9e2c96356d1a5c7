-- One row per sentence: its text, its tags and its place in the dependency graph of
-- chunks_labeled.json's depends_on (edges to earlier sentences only; invalid entries
-- were skipped at load, with a warning on the rollout). Degrees count distinct neighbours.
--- rollout_id: rollout (rollouts.rollout_id)
--- idx: original sentence index
--- text: the sentence
--- tags: its tags (function_tags), sorted; empty when none
--- depends_on: the earlier sentences it builds on, ascending and distinct
--- out_degree: number of sentences it builds on (len(depends_on))
--- in_degree: number of later sentences that build on it
create or replace view sentence_graph as
with outgoing as (
    select
        edges.rollout_id,
        edges.idx,
        list(distinct edges.depends_on_idx order by edges.depends_on_idx) as depends_on
    from sentence_dependencies as edges
    group by edges.rollout_id, edges.idx
),

incoming as (
    select
        edges.rollout_id,
        edges.depends_on_idx as idx,
        count(distinct edges.idx) as in_degree
    from sentence_dependencies as edges
    group by edges.rollout_id, edges.depends_on_idx
)

select
    texts.rollout_id,
    texts.idx,
    texts.text,
    texts.tags,
    coalesce(outgoing.depends_on, []::integer[]) as depends_on,
    len(coalesce(outgoing.depends_on, []::integer[]))::integer as out_degree,
    coalesce(incoming.in_degree, 0)::integer as in_degree
from sentence_texts as texts
left join outgoing using (rollout_id, idx)
left join incoming
    on incoming.rollout_id = texts.rollout_id and incoming.idx = texts.idx;
