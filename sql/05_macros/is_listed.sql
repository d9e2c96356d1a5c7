-- Whether a rollout is among those asked of a scoped macro (only_rollouts: NULL = every
-- rollout, else a list of ids). With a constant list DuckDB turns this into an IN filter
-- pushed into the scans, so a scoped call reads only the listed rollouts' rows.
create or replace macro is_listed(rollout_id, only_rollouts) as
    only_rollouts is null or list_contains(only_rollouts, rollout_id);
