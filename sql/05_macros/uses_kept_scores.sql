-- Whether a metric call's parameters are those of a kept score set (table kept_scores),
-- so the metric reads the kept rows instead of recomputing from the cells. The two sets,
-- written here once (warehouse writes them with kept_scores_of, 20_metrics):
--   'ranking'  : trim, proximity_ignore 4, control_depth, score_type 'mean' (METRICS.md §4-5)
--   'receiver' : no trim, proximity_ignore 4, no control_depth, score_type 'mean' (§8)
-- Called with the macro's parameters, it folds to a constant, so the branch not taken
-- is pruned before any cell is read.
create or replace macro uses_kept_scores(
    score_set, proximity_ignore, control_depth, score_type, trim
) as
    coalesce(
        proximity_ignore = 4 and score_type = 'mean'
        and case score_set
            when 'ranking' then control_depth and trim
            when 'receiver' then not control_depth and not trim
            else false
        end,
        false
    );
