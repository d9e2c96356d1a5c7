-- The scored-column rule (METRICS.md §5, docs/STATISTICS.md §1): analysed column r of a
-- rollout with n analysed sentences has a defined vertical score iff r <= n - 1 - p.
-- A proximity_ignore that is NULL or negative is an error.
create or replace macro is_scored_column(r, n_sentences, proximity_ignore) as
    case
        when proximity_ignore is null or proximity_ignore < 0
            then error('proximity_ignore must be an integer >= 0 (METRICS.md §5)')
        else r <= n_sentences - 1 - proximity_ignore
    end;
