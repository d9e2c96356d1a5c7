"""The default of every macro parameter in sql/, written once.

DuckDB needs each default as a literal in the macro header (``name := value``); the .sql
files do not write them: a header lists its parameter names in a placeholder,
``{{ params: tag, @metric }}``, and ``sql/placeholders.py`` writes each default from
``macro_defaults(name)`` when the objects are installed (a pass-through argument list,
``{{ pass: tag, @metric }}``, renders ``tag := tag, ...``). ``GROUPS`` names the
parameter lists many macros share. A default that differs on purpose in one macro is
declared in ``PER_MACRO`` with its reason; ``tests/test_defaults.py`` checks what DuckDB
installed against this module. The command-line options and their help (cli.py) and the
report parameters (``reports.data.ReportParams``) read their defaults from here, so a
parameter left unset means the same everywhere.
"""

from __future__ import annotations

DEFAULTS: dict[str, object] = {
    # The metrics, with the notebook's setting (docs/METRICS.md).
    "tag": "verbalized_evaluation_awareness",  # §1: the target tag
    "trim": True,  # §4: drop the first and the last sentence (when N >= 3)
    "proximity_ignore": 4,  # §5: p, cells within p sentences of the diagonal are ignored
    "control_depth": True,  # §5: rank-normalise each row before the column score
    "score_type": "mean",  # §5: aggregate of a column's valid cells
    "layers": None,  # §7: None = each model's representative layers (early, middle, late)
    "all_layers": False,  # §7: true = every layer of the model (overrides layers)
    "k": 20,  # §8: how many receiver heads
    # The sentence fields of chunks_labeled.json (docs/STATISTICS.md §13).
    "field": None,  # None = the first counterfactual importance field present
    # The statistics (docs/STATISTICS.md).
    "all_tags": False,  # §7: every tag present instead of tag alone
    "permutations": 1000,  # K, label permutations and sign flips behind each p-value
    "seed": 0,  # seed of the permutations: the same seed gives the same p-values
    "alpha": 0.05,  # significance level of the shares in tag_summary
    "null_model": "position",  # §2: permute within position (and length) strata; 'uniform' = all
    "exact": True,  # §2: enumerate every labelling when there are no more than permutations
    # The relations the combination macros (*_of) read, by name: the per-rollout views.
    "draws": "consistency_draws",  # head_consistency_of: consistency_draws' rows
    "partials": "consistency_partials_of",  # head_consistency_of: consistency_partials_of's rows
    "selections": "selected_head_pvalues",  # tag_summary_of: selected_head_pvalues' rows
    "consistency": "head_consistency",  # tag_summary_of, receiver_head_delta_va_of
    "receivers": "receiver_heads",  # receiver_head_delta_va_of: receiver_heads' rows
    "kurtosis": "receiver_head_kurtosis",  # receiver_heads_of: receiver_head_kurtosis' rows
    "resamples": 1000,  # §8: bootstrap resamples behind an effect's interval
    "confidence": 0.95,  # §8: coverage of the bootstrap interval
    # Scope of the internal macros behind the kept scores (README, "Kept scores").
    "unscored_only": False,  # true = only the cells of (model, rollout)s without kept scores
    "only_model": None,  # None = every model; a name limits the computation to it
    "only_rollouts": None,  # None = every rollout; a list of ids limits the computation to them
}

# Parameter lists that many macros share, written @name in the placeholders.
GROUPS: dict[str, tuple[str, ...]] = {
    # The metric's settings (METRICS.md §4, §5, §7), in the order of every header.
    "metric": ("proximity_ignore", "control_depth", "score_type", "trim", "layers", "all_layers"),
    # The permutation null (STATISTICS.md §2).
    "null": ("permutations", "seed", "null_model", "exact"),
}

_PAPER = ("METRICS.md §8: receiver heads use the thought-anchors paper's setting (raw values, "
          "no trim, every layer), not the notebook's")
_EVERY_HEAD = ("STATISTICS.md §6: 'is there a head of this model that attends to target "
               "sentences?' is asked over every stored layer, so the max-T family is every head")

# Defaults that differ on purpose in one macro: macro -> ({parameter: default}, reason).
PER_MACRO: dict[str, tuple[dict[str, object], str]] = {
    "receiver_head_kurtosis": ({"control_depth": False, "trim": False, "all_layers": True}, _PAPER),
    "receiver_heads": ({"control_depth": False, "trim": False, "all_layers": True}, _PAPER),
    "receiver_scores": ({"control_depth": False, "trim": False, "all_layers": True}, _PAPER),
    "sentence_field_scores": ({"control_depth": False, "trim": False, "all_layers": True},
                              _PAPER),
    "head_consistency": ({"all_layers": True}, _EVERY_HEAD),
    "consistency_draws": ({"all_layers": True}, _EVERY_HEAD),
    "receiver_head_delta_va": ({"all_layers": True}, _EVERY_HEAD),
    "tag_summary": ({"all_tags": True}, "STATISTICS.md §7: the summary compares every tag"),
    "head_effects": ({"all_layers": True}, _EVERY_HEAD),
    "rollout_deltas": ({"all_layers": True}, _EVERY_HEAD),
}


# The parameter sets whose column scores the warehouse keeps at ingest (README, "Kept
# scores"): a metric called with one of them reads table kept_scores, not the cells.
# sql/05_macros/uses_kept_scores.sql tests for them ({{ kept_test: SET }}),
# sql/20_metrics/kept_scores_of.sql computes them ({{ kept: SET }}) and
# warehouse/kept_scores.py computes the same numbers with NumPy as the layers stream in.
# Changing a set makes the kept scores of existing warehouses stale (written with the old one).
KEPT_SETS: dict[str, dict[str, object]] = {
    # the notebook's setting (METRICS.md §4-5): the ranking, best heads, head_stats
    "ranking": {"proximity_ignore": 4, "control_depth": True, "score_type": "mean", "trim": True},
    # the thought-anchors paper's (METRICS.md §8): receiver heads and scores
    "receiver": {"proximity_ignore": 4, "control_depth": False, "score_type": "mean", "trim": False},
}


def macro_defaults(macro: str) -> dict[str, object]:
    """The defaults of one macro's parameters: ``DEFAULTS`` with its declared differences."""
    overrides, _reason = PER_MACRO.get(macro, ({}, ""))
    return {**DEFAULTS, **overrides}
