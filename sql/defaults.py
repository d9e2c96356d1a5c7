"""The default of every macro parameter in sql/, written once.

DuckDB needs each default as a literal in the macro header (``name := value``), so the
headers repeat these values: ``tests/test_defaults.py`` parses the header of every macro
in sql/ and fails on a parameter missing here, and on a default that differs from
``DEFAULTS`` unless ``PER_MACRO`` declares it, with its reason. The command-line options
and their help (cli.py) and the report parameters (``reports.data.ReportParams``) read
their defaults from here, so a parameter left unset means the same everywhere.
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
    # The statistics (docs/STATISTICS.md).
    "all_tags": False,  # §7: every tag present instead of tag alone
    "permutations": 1000,  # K, label permutations and sign flips behind each p-value
    "seed": 0,  # seed of the permutations: the same seed gives the same p-values
    "alpha": 0.05,  # significance level of the shares in tag_summary
}

_PAPER = ("METRICS.md §8: receiver heads use the thought-anchors paper's setting (raw values, "
          "no trim, every layer), not the notebook's")
_EVERY_HEAD = ("STATISTICS.md §6: 'is there a head of this model that attends to target "
               "sentences?' is asked over every stored layer, so the max-T family is every head")

# Defaults that differ on purpose in one macro: macro -> ({parameter: default}, reason).
PER_MACRO: dict[str, tuple[dict[str, object], str]] = {
    "receiver_head_kurtosis": ({"control_depth": False, "trim": False, "all_layers": True}, _PAPER),
    "receiver_heads": ({"control_depth": False, "trim": False, "all_layers": True}, _PAPER),
    "head_consistency": ({"all_layers": True}, _EVERY_HEAD),
    "receiver_head_delta_va": ({"all_layers": True}, _EVERY_HEAD),
    "tag_summary": ({"all_tags": True}, "STATISTICS.md §7: the summary compares every tag"),
}


def macro_defaults(macro: str) -> dict[str, object]:
    """The defaults of one macro's parameters: ``DEFAULTS`` with its declared differences."""
    overrides, _reason = PER_MACRO.get(macro, ({}, ""))
    return {**DEFAULTS, **overrides}
