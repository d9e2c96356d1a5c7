"""Build the report: decide what to rebuild, write the pages, publish them in one swap.

``build_report`` is idempotent and incremental. It skips the work when neither the
warehouse content, nor the parameters, nor the report code changed since the report in
``out_dir`` was built (a digest kept in ``out_dir/.report-state.json``). Otherwise it
writes a new report into a temporary sibling directory (reports.publish) where each
rollout's directory is either built or, when that rollout's version (rollout_versions),
the parameters and the code are those of the previous build, taken over from the previous
report as it is (hard links). The index, heads page and summary are always rewritten.

Layout of a report::

    index.html                 tags in the data, ranking chart and table (with p-values), parameters
    heads.html                 statistics: layer x head map of mean ΔVA, receiver heads, tags
    summary.csv                one row per rollout, the notebook's columns
    assets/                    the Vega libraries, the page script and style: shared by every page
    ranking.png, delta_by_layer.png, head_map.png, receiver_map.png, tag_comparison.png
    <rollout>/index.html       the rollout's receiver heads (tag-free), then per layer the best
                               head's heatmap and vertical scores for the tag; its sentences
    <rollout>/meta.json        as the notebook writes it
    <rollout>/attn_layerLL_headHH.png, vert_layerLL_headHH.png (best heads),
    <rollout>/recv_attn_layerLL_headHH.png, recv_vert_layerLL_headHH.png (receiver heads)
    .report-state.json         what the report was built from (skip detection, per-rollout keys)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import polars as pl
import vl_convert

from reports import causal
from reports.data import PVALUE_COLUMNS, ReportError, ReportParams, load_report_data, warehouse_digest
from reports.files import link_or_copy_tree, safe_dir_names, write_atomic
from reports.kept_stats import KeptStatistics, cache_dir_of
from reports.pages import now
from reports.publish import STATE_FILE, check_out_dir, report_lock, staging
from reports.write import write_index_files, write_rollout

__all__ = ["ReportError", "ReportResult", "build_report", "DEFAULT_OUT_DIR", "STATE_FILE",
           "rollout_dir_names"]

DEFAULT_OUT_DIR = "reports/out"
STATE_VERSION = 2
rollout_dir_names = safe_dir_names


@dataclass
class ReportResult:
    """What build_report did."""

    index_path: Path
    out_dir: Path
    skipped: bool
    reason: str
    model: str | None = None
    n_rollouts: int = 0
    n_files: int = 0
    seconds: float = 0.0
    rebuilt: tuple[str, ...] = ()  # rollouts whose pages were built (the others were kept)
    statistics_computed: tuple[str, ...] = ()  # rollouts whose permutation statistics were computed


def build_report(
    warehouse,
    out_dir: str | os.PathLike = DEFAULT_OUT_DIR,
    *,
    tag: str | None = None,
    layers: list[int] | tuple[int, ...] | None = None,
    proximity_ignore: int | None = None,
    trim: bool | None = None,
    control_depth: bool | None = None,
    score_type: str | None = None,
    rollouts: str | None = None,
    model: str | None = None,
    permutations: int | None = None,
    seed: int | None = None,
    force: bool = False,
    png: bool = True,
    wait_s: float = 30.0,
    on_step: Callable[[str], None] | None = None,
) -> ReportResult:
    """Write the HTML report of ``warehouse`` (a Warehouse or its directory) into ``out_dir``.

    Parameters left ``None`` take the defaults of :class:`reports.data.ReportParams`, i.e.
    the SQL macros' own (``sql/defaults.py``, which tests/test_defaults.py checks against every
    macro header: METRICS.md's notebook setting, and ``permutations`` and ``seed`` of
    STATISTICS.md for the p-values). ``force`` rebuilds every page. ``wait_s``: how long to
    wait for a process that holds the warehouse for writing. ``on_step`` is called with a
    short message after each file group is written (progress display; a test can raise from
    it to simulate a failure halfway).
    """
    from warehouse.store import Warehouse

    started = time.monotonic()
    if not isinstance(warehouse, Warehouse):
        warehouse = Warehouse(warehouse)
    given = {"tag": tag, "proximity_ignore": proximity_ignore, "control_depth": control_depth,
             "score_type": score_type, "trim": trim, "rollouts": rollouts, "model": model,
             "permutations": permutations, "seed": seed,
             "layers": tuple(int(x) for x in layers) if layers is not None else None}
    params = ReportParams(**{k: v for k, v in given.items() if v is not None})
    if params.permutations < 0:
        raise ReportError(f"permutations must be 0 or more, not {params.permutations}")
    out_dir = Path(out_dir).expanduser().absolute()
    index_path = out_dir / "index.html"
    check_out_dir(out_dir)
    step = on_step or (lambda message: None)

    with report_lock(out_dir):
        previous = read_state(out_dir) or {}
        with warehouse.connect(read_only=True, wait_s=wait_s) as con:
            state = {
                "version": STATE_VERSION,
                "warehouse_digest": warehouse_digest(con),
                "params": {**params.as_dict(), "png": png},
                "code_digest": code_digest(),
            }
            reason = rebuild_reason(out_dir, previous, state, force)
            if reason is None:
                return ReportResult(
                    index_path=index_path, out_dir=out_dir, skipped=True, model=previous.get("model"),
                    n_rollouts=previous.get("n_rollouts", 0),
                    reason=("up to date: warehouse content and parameters unchanged since the report "
                            f"of {previous.get('built_at', '?')}; --force rebuilds"),
                    seconds=time.monotonic() - started,
                )
            plan = RolloutPlan(state, {} if force else previous.get("rollouts", {}), out_dir)
            kept = KeptStatistics(cache_dir_of(out_dir), state["code_digest"], on_step=step)
            data = load_report_data(con, params, choose_details=plan.choose, kept_stats=kept)
            data.causal = causal.load_causal_data(con, params, data.model, list(data.detail_ids))

        try:
            with staging(out_dir) as tmp:
                n_files = write_report(data, tmp, plan, out_dir, png=png, step=step)
                plan.record(data.ranking)
                state.update(built_at=now(), model=data.model, n_rollouts=data.ranking.height,
                             reason=reason, rollouts=plan.entries)
                write_atomic(tmp / STATE_FILE, json.dumps(state, indent=1, default=str))
            kept.prune()  # published: the statistics of rollout versions no longer reported go
        except (ReportError, KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            kept = "the previous report is unchanged" if index_path.exists() else "nothing was written"
            raise ReportError(f"report not written ({type(exc).__name__}: {exc}); {kept} "
                              f"at {out_dir}") from exc
    return ReportResult(index_path=index_path, out_dir=out_dir, skipped=False, reason=reason,
                        model=data.model, n_rollouts=data.ranking.height, n_files=n_files + 1,
                        seconds=time.monotonic() - started, rebuilt=tuple(data.detail_ids),
                        statistics_computed=tuple(kept.computed))


# --- what to rebuild -----------------------------------------------------------------------


def code_sources() -> list[Path]:
    """The files whose content decides the pages: the report code, the SQL it runs and
    sql/*.py (sql/defaults.py renders the macros' defaults into that SQL)."""
    root = Path(__file__).resolve().parent.parent
    sql_dir = root / "sql"
    return sorted([*root.joinpath("reports").glob("*.py"), *sql_dir.rglob("*.sql"), *sql_dir.glob("*.py")])


def code_digest() -> str:
    """The code sources and the chart libraries' versions: a change rebuilds."""
    hasher = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in code_sources():
        hasher.update(path.relative_to(root).as_posix().encode())
        hasher.update(path.read_bytes())
    hasher.update(f"altair {alt.__version__} vl-convert {vl_convert.__version__}".encode())
    return hasher.hexdigest()


def read_state(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def rebuild_reason(out_dir: Path, previous: dict, state: dict, force: bool) -> str | None:
    """Why the report must be built, or None when the one in out_dir is current."""
    if force:
        return "forced (--force)"
    if not previous or not (out_dir / "index.html").exists():
        return f"no previous report in {out_dir}"
    if previous.get("params") != state["params"]:
        old, new = previous.get("params") or {}, state["params"]
        changed = [f"{k} {old.get(k)!r} -> {new[k]!r}" for k in new if old.get(k) != new[k]]
        return "parameters changed: " + ", ".join(changed)
    if previous.get("warehouse_digest") != state["warehouse_digest"]:
        return f"warehouse content changed since the report of {previous.get('built_at', '?')}"
    if previous.get("code_digest") != state["code_digest"] or previous.get("version") != STATE_VERSION:
        return "report code changed"
    return None


class RolloutPlan:
    """Which rollout pages to build and which to keep from the previous report.

    A rollout's key hashes its version (rollout_versions: content hash, attention
    fingerprint, write times), the parameters, the code digest and its directory name; a
    page whose key is unchanged and whose directory is still there is kept as it is, and so
    are the rollout's permutation p-values (kept in the state file with the key).
    """

    def __init__(self, state: dict, previous: dict[str, dict], out_dir: Path):
        self.common = json.dumps([state["params"], state["code_digest"], STATE_VERSION], default=str)
        self.previous, self.out_dir = previous, out_dir
        self.names: dict[str, str] = {}
        self.entries: dict[str, dict] = {}

    def choose(self, ranking: pl.DataFrame) -> tuple[list[str], dict[str, dict]]:
        """Given the ranking (with version columns): the rollouts whose pages are built, and
        the kept p-values of the others."""
        self.names = safe_dir_names(ranking["rollout_id"].to_list())
        build, kept = [], {}
        for row in ranking.iter_rows(named=True):
            rid = row["rollout_id"]
            version = [str(row[c]) for c in ("content_hash", "loaded_at", "fingerprint", "ingested_at")]
            key = hashlib.sha256(json.dumps([self.common, rid, self.names[rid], version]).encode()
                                 ).hexdigest()
            self.entries[rid] = {"dir": self.names[rid], "key": key}
            old = self.previous.get(rid, {})
            if (old.get("key") != key or "pvalues" not in old
                    or not (self.out_dir / self.names[rid] / "index.html").is_file()):
                build.append(rid)
            else:
                kept[rid] = old["pvalues"]
        return build, kept

    def record(self, ranking: pl.DataFrame) -> None:
        """Keep each rollout's p-values with its key (the next build reuses them)."""
        for row in ranking.select("rollout_id", *PVALUE_COLUMNS).iter_rows(named=True):
            self.entries[row.pop("rollout_id")]["pvalues"] = row


# --- writing -------------------------------------------------------------------------------


def write_report(data, out: Path, plan: RolloutPlan, previous_dir: Path, *, png: bool,
                 step: Callable[[str], None]) -> int:
    """Every file of the report into ``out``; the number of files written."""
    files = write_index_files(data, out, plan.names, previous_dir, png=png, step=step)
    building = set(data.detail_ids)
    for rollout in data.ranking.iter_rows(named=True):
        rid = rollout["rollout_id"]
        folder = out / plan.names[rid]
        if rid in building:
            folder.mkdir()
            files += write_rollout(data, rollout, folder, png=png)
            step(f"rollout {rid}")
        else:
            files += link_or_copy_tree(previous_dir / plan.names[rid], folder)
            step(f"rollout {rid} (kept)")
    return files
