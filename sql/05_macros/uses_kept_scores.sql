-- Whether a metric call's parameters are those of a kept score set (table kept_scores),
-- so the metric reads the kept rows instead of recomputing from the cells. The sets are
-- sql/defaults.py KEPT_SETS: 'ranking' (the notebook's setting, METRICS.md §4-5) and
-- 'receiver' (the paper's, §8); the warehouse writes them with kept_scores_of (20_metrics).
-- Called with the macro's parameters, it folds to a constant, so the branch not taken
-- is pruned before any cell is read.
create or replace macro uses_kept_scores(
    score_set, proximity_ignore, control_depth, score_type, trim
) as
    coalesce(
        case score_set
            when 'ranking' then {{ kept_test: ranking }}
            when 'receiver' then {{ kept_test: receiver }}
            else false
        end,
        false
    );
