-- Whether a row's model and rollout are in the scope asked of the macros behind the kept
-- scores (only_model: NULL = every model; only_rollouts: as is_listed).
create or replace macro is_in_scope(model, rollout_id, only_model, only_rollouts) as
    (only_model is null or model = only_model)
    and is_listed(rollout_id, only_rollouts);
