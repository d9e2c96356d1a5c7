-- Whether a row's model and rollout are in the scope asked of the macros behind the kept
-- scores (only_model, only_rollout: NULL = every model, every rollout).
create or replace macro is_in_scope(model, rollout_id, only_model, only_rollout) as
    (only_model is null or model = only_model)
    and (only_rollout is null or rollout_id = only_rollout);
