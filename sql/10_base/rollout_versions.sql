-- One row per (model, rollout) with stored attention: what identifies this version of the
-- rollout's data. A report keeps per-rollout results keyed by these columns and rebuilds a
-- rollout's page only when one of them changes.
--- model: model name
--- rollout_id: rollout (rollouts.rollout_id)
--- rollout_name: the rollout directory's own name
--- n_sentences: N, sentences before any trim
--- content_hash: sha256 of everything stored for the rollout (sentences, tags, metadata)
--- loaded_at: when the rollout's sentences were last written
--- fingerprint: hash of what produced the attention (text, model, capture parameters)
--- ingested_at: when the attention was written
create or replace view rollout_versions as
select
    runs.model,
    runs.rollout_id,
    rollouts.rollout_name,
    rollouts.n_sentences,
    rollouts.content_hash,
    rollouts.loaded_at,
    runs.fingerprint,
    runs.ingested_at
from attention_runs as runs
inner join rollouts
    on rollouts.rollout_id = runs.rollout_id;
