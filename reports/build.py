"""Build the report: warehouse -> frames (reports.data) -> charts -> files, swapped in whole.

``build_report`` is idempotent. It skips the work when neither the warehouse content,
nor the parameters, nor the report code changed since the report in ``out_dir`` was
built (a digest kept in ``out_dir/.report-state.json``). Otherwise it writes the whole
report into a temporary sibling directory and swaps it in with one atomic exchange of
the two directories (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames), so a
reader sees the old report or the new one, never a mix. On any failure the temporary
directory is removed and the previous report stays as it was.

Layout of a report::

    index.html                 ranking chart and table (with p-values), parameters, links
    heads.html                 statistics: layer x head map of mean ΔVA, receiver heads, tags
    summary.csv                one row per rollout, the notebook's columns
    ranking.png, delta_by_layer.png, head_map.png, receiver_map.png, tag_comparison.png
    <rollout>/index.html       per layer: heatmap and vertical scores of the best head
    <rollout>/meta.json        as the notebook writes it
    <rollout>/attn_layerLL_headHH.png, <rollout>/vert_layerLL_headHH.png
    .report-state.json         what the report was built from (skip detection)
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import polars as pl
import vl_convert

from reports import causal, charts
from reports.data import (
    ALPHA,
    DEFAULT_TAG,
    RECEIVER_K,
    TOP_CONSISTENT,
    ReportData,
    ReportError,
    ReportParams,
    load_report_data,
    warehouse_digest,
)
from reports.html import chart_div, esc, page, table

__all__ = ["ReportError", "ReportResult", "build_report", "DEFAULT_OUT_DIR"]

DEFAULT_OUT_DIR = "reports/out"
STATE_FILE = ".report-state.json"
STATE_VERSION = 1
SUMMARY_COLUMNS = ["rollout_id", "n_sentences", "n_va", "va_rate", "distinctiveness_score", "layers",
                   "heads", "delta_va_vert_by_layer", "lift_in_va_by_layer"]
PNG_SCALE = 2


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

    Parameters left ``None`` take the SQL macros' defaults (``sql/defaults.py``, which
    tests/test_defaults.py checks against every macro header: METRICS.md's notebook setting,
    and ``permutations`` and ``seed`` of STATISTICS.md for the p-values).
    ``wait_s``: how long to wait for a process that holds the warehouse for writing.
    ``on_step`` is called with a short message after each file group is written (progress
    display; a test can raise from it to simulate a failure halfway).
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
    _check_out_dir(out_dir)
    step = on_step or (lambda message: None)

    with _report_lock(out_dir):
        _remove_leftovers(out_dir)
        with warehouse.connect(read_only=True, wait_s=wait_s) as con:
            state = {
                "version": STATE_VERSION,
                "warehouse_digest": warehouse_digest(con),
                "params": {**params.as_dict(), "png": png},
                "code_digest": _code_digest(),
            }
            reason = _rebuild_reason(out_dir, state, force)
            if reason is None:
                previous = _read_state(out_dir) or {}
                return ReportResult(
                    index_path=index_path, out_dir=out_dir, skipped=True, model=previous.get("model"),
                    n_rollouts=previous.get("n_rollouts", 0),
                    reason=("up to date: warehouse content and parameters unchanged since the report "
                            f"of {previous.get('built_at', '?')}; --force rebuilds"),
                    seconds=time.monotonic() - started,
                )
            data = load_report_data(con, params)
            data.causal = causal.load_causal_data(con, params, data.model)  # thought-anchors fields

        tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            tmp.mkdir(parents=True)
            n_files = _write_report(data, tmp, png=png, step=step)
            state.update(built_at=_now(), model=data.model, n_rollouts=data.ranking.height,
                         reason=reason)
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=1, default=str), encoding="utf-8")
            _swap_in(tmp, out_dir)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, ReportError | KeyboardInterrupt | SystemExit):
                raise
            kept = "the previous report is unchanged" if index_path.exists() else "nothing was written"
            raise ReportError(f"report not written ({type(exc).__name__}: {exc}); {kept} "
                              f"at {out_dir}") from exc
    return ReportResult(index_path=index_path, out_dir=out_dir, skipped=False, reason=reason,
                        model=data.model, n_rollouts=data.ranking.height, n_files=n_files + 1,
                        seconds=time.monotonic() - started)


# --- skip detection ------------------------------------------------------------------


def _code_digest() -> str:
    """The report code, the SQL it runs and the chart libraries: a change rebuilds."""
    hasher = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for path in sorted([*root.joinpath("reports").glob("*.py"), *root.joinpath("sql").rglob("*.sql")]):
        hasher.update(path.relative_to(root).as_posix().encode())
        hasher.update(path.read_bytes())
    hasher.update(f"altair {alt.__version__} vl-convert {vl_convert.__version__}".encode())
    return hasher.hexdigest()


def _read_state(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _rebuild_reason(out_dir: Path, state: dict, force: bool) -> str | None:
    """Why the report must be built, or None when the one in out_dir is current."""
    previous = _read_state(out_dir)
    if force:
        return "forced (--force)"
    if previous is None or not (out_dir / "index.html").exists():
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


# --- the output directory ------------------------------------------------------------


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to replace a directory that is not a report (the swap deletes the old one)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ReportError(f"--out {out_dir} is a file; give a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / STATE_FILE).exists():
        raise ReportError(
            f"refusing to write the report into {out_dir}: it holds files that are not a report "
            f"built by this command (no {STATE_FILE}); choose another --out or empty it"
        )


@contextlib.contextmanager
def _report_lock(out_dir: Path):
    """One report build per output directory at a time."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out_dir.with_name(f".{out_dir.name}.lock")
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReportError(f"another report build is writing {out_dir} (lock {lock_path}); "
                              "wait for it to finish") from None
        yield


def _remove_leftovers(out_dir: Path) -> None:
    """Temporary directories of builds that were killed (we hold the lock: none is live)."""
    for path in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the filesystem cannot exchange
        return False
    raise OSError(errno, f"cannot exchange {a} and {b}: {os.strerror(errno)}")


def _swap_in(new: Path, out_dir: Path) -> None:
    """Make ``new`` the report at ``out_dir``; the previous one is deleted afterwards."""
    if not out_dir.exists():
        os.rename(new, out_dir)
        return
    if _exchange(new, out_dir):
        shutil.rmtree(new, ignore_errors=True)  # now the old report
        return
    old = out_dir.with_name(f".{out_dir.name}.tmp-old-{uuid.uuid4().hex[:8]}")
    os.rename(out_dir, old)
    os.rename(new, out_dir)
    shutil.rmtree(old, ignore_errors=True)


# --- writing -------------------------------------------------------------------------


def rollout_dir_names(rollout_ids: list[str]) -> dict[str, str]:
    """A safe, unique directory name per rollout id (ids are paths and may hold anything)."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for rid in rollout_ids:
        name = re.sub(r"[^A-Za-z0-9._-]+", "--", rid).strip(".-") or "rollout"
        if name in used or name.startswith("index"):
            name = f"{name}-{hashlib.sha256(rid.encode()).hexdigest()[:8]}"
        used.add(name)
        names[rid] = name
    return names


def _write_report(data: ReportData, out: Path, *, png: bool, step: Callable[[str], None]) -> int:
    # Specs are built with to_dict(validate=False): the builders' output is validated by
    # their own tests (tests/test_reports_charts.py), and validating again here is slow.
    names = rollout_dir_names(data.rollout_ids())
    files = 0
    summary_frame(data).write_csv(out / "summary.csv")
    files += 1
    step("summary.csv")

    index_charts = {
        "ranking": charts.ranking_bar(data.ranking).to_dict(validate=False),
        "delta_by_layer": charts.delta_by_layer(
            data.best.filter(pl.col("head").is_not_null())).to_dict(validate=False),
    }
    if png:
        for name, spec in index_charts.items():
            _write_png(spec, out / f"{name}.png")
            files += 1
    (out / "index.html").write_text(index_page(data, names, index_charts), encoding="utf-8")
    files += 1
    step("index.html")

    heads_charts = statistics_charts(data)
    heads_charts.update(causal.heads_charts(data.causal))
    if png:
        for name, spec in heads_charts.items():
            _write_png(spec, out / f"{name}.png")
            files += 1
    (out / "heads.html").write_text(heads_page(data, heads_charts), encoding="utf-8")
    files += 1
    step("heads.html")

    for rollout in data.ranking.iter_rows(named=True):
        rid = rollout["rollout_id"]
        folder = out / names[rid]
        folder.mkdir()
        files += _write_rollout(data, rollout, folder, png=png)
        step(f"rollout {rid}")
    return files


def _write_rollout(data: ReportData, rollout: dict, folder: Path, *, png: bool) -> int:
    rid = rollout["rollout_id"]
    sentences = data.sentences.filter(pl.col("rollout_id") == rid)
    best = data.best.filter(pl.col("rollout_id") == rid).sort("layer")
    meta = {
        "rollout_id": rid,
        "n_sentences": rollout["n_sentences_original"],
        "n_va": rollout["n_va_original"],
        "va_idxs": sentences.filter(pl.col("is_target"))["idx"].to_list(),
        "layers": [int(x) for x in best["layer"]],
        "heads": [None if x is None else int(x) for x in best["head"]],
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    files = 1
    sections = [_layer_section(data, rollout, head_row, sentences)
                for head_row in best.iter_rows(named=True)]
    sections += causal.rollout_sections(data.causal, rid, data.params.tag)
    for _title, layer_charts in sections:
        if png:
            for filename, (spec, _renderer) in layer_charts.items():
                _write_png(spec, folder / f"{filename}.png")
                files += 1
    (folder / "index.html").write_text(rollout_page(data, rollout, sentences, sections),
                                       encoding="utf-8")
    return files + 1


def _layer_section(data: ReportData, rollout: dict, head_row: dict, sentences: pl.DataFrame):
    """Title, chart ids and specs of one layer's best head."""
    rid, layer, head = rollout["rollout_id"], head_row["layer"], head_row["head"]
    if head is None:
        return (f"layer={layer}: no head has a defined ΔVA (no target, or no non-target, among "
                "the analysed sentences with a vertical score)"), {}
    key = (pl.col("rollout_id") == rid) & (pl.col("layer") == layer) & (pl.col("head") == head)
    analysed = sentences.filter(pl.col("analysed"))
    color_max = data.color_max.filter(key)["color_max"]
    title = (f"{rid} | layer={layer} head={head} | delta_va_vert={_fmt(head_row['delta_va_vert'], 4)} "
             f"lift_in_va={_fmt(head_row['lift_in_va'], 3)}")
    heat = charts.heatmap(
        data.cells.filter(key), analysed, title=title,
        color_max=color_max[0] if color_max.len() else None,
    )
    vertical = data.vertical.filter(key).join(analysed.select("idx", "text"), on="idx", how="left")
    vert = charts.vertical_scores_chart(
        vertical, title=f"Vertical scores | {rid} | layer={layer} head={head}",
        target_label=_target_label(data.params.tag),
    )
    stem = f"layer{layer:02d}_head{head:02d}"
    return title, {f"attn_{stem}": (heat.to_dict(validate=False), "canvas"),
                   f"vert_{stem}": (vert.to_dict(validate=False), "svg")}


def _write_png(spec: dict, path: Path) -> None:
    path.write_bytes(vl_convert.vegalite_to_png(spec, scale=PNG_SCALE))


def summary_frame(data: ReportData) -> pl.DataFrame:
    """summary.csv: the notebook's columns and meanings (counts before trim, as it wrote them)."""
    rows = []
    for r in data.ranking.iter_rows(named=True):
        rows.append({
            "rollout_id": r["rollout_id"],
            "n_sentences": r["n_sentences_original"],
            "n_va": r["n_va_original"],
            "va_rate": r["va_rate_original"],
            "distinctiveness_score": r["distinctiveness_score"],
            "layers": ",".join(str(x) for x in r["layers"]),
            "heads": ",".join("nan" if x is None else str(x) for x in r["heads"]),
            "delta_va_vert_by_layer": ",".join(_fmt(x, 4) for x in r["delta_va_vert_by_layer"]),
            "lift_in_va_by_layer": ",".join(_fmt(x, 3) for x in r["lift_in_va_by_layer"]),
        })
    schema = {"rollout_id": pl.String, "n_sentences": pl.Int64, "n_va": pl.Int64, "va_rate": pl.Float64,
              "distinctiveness_score": pl.Float64, "layers": pl.String, "heads": pl.String,
              "delta_va_vert_by_layer": pl.String, "lift_in_va_by_layer": pl.String}
    return pl.DataFrame(rows, schema=schema).select(SUMMARY_COLUMNS)


# --- pages ---------------------------------------------------------------------------


def _fmt(value, digits: int) -> str:
    """A number as the notebook prints it ('nan' when undefined)."""
    if value is None or value != value:
        return "nan"
    return f"{float(value):.{digits}f}"


def _target_label(tag: str) -> str:
    return "VA" if tag == DEFAULT_TAG else tag


def _num(value, digits: int | None = None) -> tuple[str, str]:
    if value is None:
        return "—", "num"
    return (esc(_fmt(value, digits)) if digits is not None else esc(value)), "num"


def _parameters_table(data: ReportData) -> str:
    p = data.params
    layers = (", ".join(map(str, data.layers)) + ("" if p.layers is not None else
                                                    " (representative early/mid/late)"))
    info = data.model_info
    model = data.model + "".join(
        f", {label} {info[key]}" for key, label in
        (("n_layers", "layers"), ("n_heads", "heads"), ("source", "from"), ("revision", "revision"))
        if info.get(key) is not None
    )
    rows = [
        ("tag", p.tag), ("proximity_ignore", p.proximity_ignore), ("trim", p.trim),
        ("control_depth", p.control_depth), ("score_type", p.score_type), ("layers", layers),
        ("rollouts", p.rollouts or "all"), ("model", model),
        ("permutations", p.permutations), ("seed", p.seed),
        ("attention ingested", f"{_when(data.ingest.get('first_ingested_at'))} to "
                               f"{_when(data.ingest.get('last_ingested_at'))} "
                               f"({data.ingest.get('attention_runs', 0)} rollouts)"),
        ("rollouts last loaded", _when(data.ingest.get("last_loaded_at"))),
        ("report built", _now()),
    ]
    return table(["parameter", "value"], [[(esc(k), ""), (f"<code>{esc(v)}</code>", "")] for k, v in rows])


def index_page(data: ReportData, names: dict[str, str], index_charts: dict[str, dict]) -> str:
    """The index: ranking chart and table, best heads per layer, parameters, links."""
    layer_headers = [f"layer {layer}: head | ΔVA | lift | p (FWER)" for layer in data.layers]
    rows, classes = [], []
    by_rollout = data.best.partition_by("rollout_id", as_dict=True)
    for r in data.ranking.iter_rows(named=True):
        rid = r["rollout_id"]
        best = by_rollout.get((rid,), pl.DataFrame())
        per_layer = {b["layer"]: b for b in best.iter_rows(named=True)} if best.height else {}
        layer_p = dict(zip(r["layers"], r["p_value_fwer_by_layer"] or [], strict=False))
        row = [
            _num(r["rank"]),
            (f'<a href="{esc(names[rid])}/index.html">{esc(rid)}</a>', ""),
            _num(r["distinctiveness_score"], 4),
            _num(r["p_value_score"], 4),
            _num(r["n_sentences"]), _num(r["n_va"]), _num(r["va_rate"], 3),
            _num(r["n_sentences_original"]), _num(r["n_va_original"]),
        ]
        for layer in data.layers:
            b = per_layer.get(layer)
            if b is None or b["head"] is None:
                row.append(("—", ""))
            else:
                row.append((esc(f"h{b['head']} | {_fmt(b['delta_va_vert'], 4)} | "
                                f"{_fmt(b['lift_in_va'], 3)} | {_fmt(layer_p.get(layer), 4)}"), "num"))
        rows.append(row)
        classes.append("")
    headers = ["rank", "rollout", "S", "p (S)", "n (analysed)", "targets (analysed)", "rate (analysed)",
               "N (original)", "targets (original)", *layer_headers]
    pngs = " ".join(f'<a href="{name}.png">{name}.png</a>' for name in index_charts)
    body = f"""
<h1>Attention report: {esc(data.model)}</h1>
<p class="muted">{data.ranking.height} rollouts, ranked by distinctiveness
S = Σ over layers of |ΔVA| of the layer's best head (METRICS.md §7). Analysed counts are
after the trim of the first and last sentence; original counts before it.</p>
<p><a href="heads.html">Statistics: is a separation real? Every head across rollouts, receiver
heads, and the tags compared →</a></p>
{chart_div("ranking")}
{chart_div("delta_by_layer")}
<h2>Ranking</h2>
<p class="muted">{esc(_P_VALUE_NOTE)} <b>p (S)</b>: the same for the rollout's score S (its
best heads summed over layers, with the selection repeated on every shuffle). <b>p (FWER)</b>:
the family-wise p-value of the layer's best head, i.e. of the best of the layer's heads,
which is the one to read, not the head's own p-value. {_permutations_note(data)}</p>
{table(headers, rows, classes)}
<p class="files">Files: <a href="summary.csv">summary.csv</a> {pngs}</p>
<h2>Parameters</h2>
{_parameters_table(data)}
"""
    return page(f"Attention report: {data.model}", body,
                {name: (spec, "svg") for name, spec in index_charts.items()})


_P_VALUE_NOTE = (
    "Null used: position-matched shuffles (null_model 'position', docs/STATISTICS.md §2). A "
    "p-value here is the chance of a separation at least this large if the sentence labels were "
    "shuffled only among sentences at a similar place in the rollout and of similar length (the "
    "same block of about 12 sentences and length half, after removing each block's trend with "
    "position): small means the head prefers these sentences beyond what position and length "
    "explain; it says nothing about how large the effect is. q-values (Benjamini-Hochberg) "
    "bound the share of false findings among many tests; effect sizes with bootstrap intervals "
    "are in head_effects. The placebo columns repeat the tag's statistics for as many sentences "
    "drawn at matched positions: what position alone produces."
)


def _permutations_note(data: ReportData) -> str:
    k = data.params.permutations
    return esc(f"{k} permutations, seed {data.params.seed}: no p-value is below 1/{k + 1} = "
               f"{1 / (k + 1):.4f}.")


def statistics_charts(data: ReportData) -> dict[str, dict]:
    """The statistics page's chart specs (a chart without rows is left out)."""
    specs = {}
    if data.head_map.height:
        specs["head_map"] = charts.head_consistency_map(data.head_map, alpha=ALPHA).to_dict(validate=False)
    if data.receivers.height:
        specs["receiver_map"] = charts.receiver_map(data.receivers, k=RECEIVER_K,
                                                    alpha=ALPHA).to_dict(validate=False)
    if data.tags.height:
        specs["tag_comparison"] = charts.tag_comparison(data.tags, alpha=ALPHA).to_dict(validate=False)
    return specs


def _chart_or_note(name: str, specs: dict, note: str) -> str:
    if name in specs:
        return chart_div(name) + f'<p class="files"><a href="{name}.png">{name}.png</a></p>'
    return f'<p class="muted">{esc(note)}</p>'


def _head_rows(frame: pl.DataFrame, *, rank: bool = False, kurtosis: bool = False) -> list:
    rows = []
    for h in frame.iter_rows(named=True):
        rows.append([
            *([_num(h["rank"])] if rank else []),
            _num(h["layer"]), _num(h["head"]),
            *([_num(h["mean_kurtosis"], 3)] if kurtosis else []),
            _num(h["n_rollouts"]), _num(h["mean_delta_va_vert"], 4), _num(h["t_statistic"], 2),
            _num(h["share_same_sign"], 2), _num(h["p_value"], 4), _num(h["p_value_fwer"], 4),
        ])
    return rows


HEAD_HEADERS = ["layer", "head", "rollouts", "mean ΔVA", "t", "share same sign", "p", "p (FWER)"]


def heads_page(data: ReportData, specs: dict[str, dict]) -> str:
    """Statistics (sql/40_stats): every head's mean ΔVA, receiver heads, tags compared."""
    p = data.params
    label = _target_label(p.tag)
    scope = ("every rollout of the model in the warehouse" +
             (" (the --rollouts filter applies to the ranking only)" if p.rollouts else ""))
    significant = data.head_map.filter(pl.col("significant_fwer"))
    found = (f"{significant.height} head(s) have a family-wise p ≤ {ALPHA:g}."
             if data.head_map.height else "")
    receivers = data.receivers.filter(pl.col("is_receiver")) if data.receivers.height else data.receivers
    tag_rows = []
    for t in data.tags.iter_rows(named=True):
        tag_rows.append([
            (("▶ " if t["is_report_tag"] else "") + esc(t["tag"]), ""),
            _num(t["n_rollouts"]), _num(t["mean_n_target"], 2), _num(t["n_selections"]),
            _num(t["mean_best_abs_delta_va"], 4), _num(t["share_uncorrected_significant"], 2),
            _num(t["share_fwer_significant"], 2), _num(t["median_p_value_fwer"], 4),
            (esc(f"L{t['top_layer']} H{t['top_head']}") if t["top_layer"] is not None else "—", "num"),
            _num(t["top_mean_delta_va_vert"], 4), _num(t["top_t_statistic"], 2),
            _num(t["top_p_value_fwer"], 4), _num(t["n_heads_fwer_significant"]),
            _num(t.get("placebo_share_fwer_significant"), 2), _num(t.get("placebo_top_p_value_fwer"), 4),
        ])
    tag_headers = ["tag", "rollouts", "mean targets", "selections", "mean best |ΔVA|",
                   f"share p ≤ {ALPHA:g}", f"share p (FWER) ≤ {ALPHA:g}", "median p (FWER)", "top head",
                   "top mean ΔVA", "top t", "top p (FWER)", f"heads p (FWER) ≤ {ALPHA:g}",
                   f"placebo share p (FWER) ≤ {ALPHA:g}", "placebo top p (FWER)"]
    tag_layers = (", ".join(map(str, data.layers)) +
                  ("" if p.layers is not None else " (representative)"))
    body = f"""
<p><a href="index.html">← all rollouts</a></p>
<h1>Heads and tags: {esc(data.model)}</h1>
<p class="muted">Tag <code>{esc(p.tag)}</code>; computed over {esc(scope)};
{_permutations_note(data)} Definitions: docs/STATISTICS.md in the repository.</p>
<h2>How to read a p-value here</h2>
<p>{esc(_P_VALUE_NOTE)} Per rollout and layer the notebook keeps the best of the layer's heads;
the best of many noisy heads looks good by chance, so read the <b>family-wise</b> p-value
(p (FWER)), which repeats that selection on every shuffle, not the uncorrected one. Across
rollouts, the question is whether the same head separates {esc(label)} sentences in most of them.</p>

<h2>Mean ΔVA of every head across rollouts (all layers)</h2>
<p class="muted">Each cell is one head: its ΔVA averaged over the rollouts (red: {esc(label)}
sentences get more attention than the others, blue: less). Outlined cells have a family-wise
p ≤ {ALPHA:g}: a test of the mean against each rollout's own position-matched shuffles (rollouts
of one problem count once together), corrected for looking at every head of every layer.
A dot marks a head that is significant only without the correction: about {ALPHA:.0%} of the
heads get one by chance. {esc(found)}</p>
{_chart_or_note("head_map", specs, "No head has a defined ΔVA in any rollout.")}
<h3>The {TOP_CONSISTENT} most consistent heads (smallest family-wise p)</h3>
{table(HEAD_HEADERS, _head_rows(data.top_heads))}

<h2>Receiver heads</h2>
<p class="muted">Receiver heads (the paper's definition) concentrate attention on a few
sentences: their vertical scores have a high kurtosis (paper setting: no trim, no depth
control, every layer). The map shows each head's mean kurtosis over rollouts; the top
{RECEIVER_K} are outlined with their rank. The table gives their mean ΔVA for
<code>{esc(p.tag)}</code> across rollouts: a receiver head attends to some sentences strongly, and
the family-wise p says whether those are {esc(label)} sentences more than chance allows.</p>
{_chart_or_note("receiver_map", specs, "No head has a defined kurtosis.")}
{table(["rank", "layer", "head", "mean kurtosis", *HEAD_HEADERS[2:]],
       _head_rows(receivers, rank=True, kurtosis=True))}

<h2>Tags compared</h2>
<p class="muted">The same statistics for every tag, on layers {esc(tag_layers)}. Left: the share
of the notebook's selections (best head per rollout and layer) that look significant; without
correction it is well above {ALPHA:g} even when nothing is there, while the family-wise share
should be near {ALPHA:g} (dashed line) under no effect. If other tags get as many significant
selections or consistent heads as <code>{esc(p.tag)}</code> (▶, dark bars), the result is not
specific to it.</p>
{_chart_or_note("tag_comparison", specs, "No tag has a defined ΔVA.")}
{table(tag_headers, tag_rows)}
{causal.heads_block(data.causal, specs)}
"""
    return page(f"Heads and tags: {data.model}", body,
                {name: (spec, "svg") for name, spec in specs.items()})


def rollout_page(data: ReportData, rollout: dict, sentences: pl.DataFrame, sections: list) -> str:
    """One rollout: per layer the best head's heatmap and vertical scores, then its sentences."""
    rid = rollout["rollout_id"]
    blocks, page_charts = [], {}
    for title, layer_charts in sections:
        blocks.append(f"<h2>{esc(title)}</h2>")
        for filename, spec_and_renderer in layer_charts.items():
            blocks.append(chart_div(filename))
            page_charts[filename] = spec_and_renderer
        if layer_charts:
            links = " ".join(f'<a href="{name}.png">{name}.png</a>' for name in layer_charts)
            blocks.append(f'<p class="files">{links}</p>')
    label = _target_label(data.params.tag)
    rows, classes = [], []
    for s in sentences.iter_rows(named=True):
        rows.append([
            _num(s["idx"]), _num(s["r"]),
            (f"★ {esc(label)}" if s["is_target"] else "", ""),
            (esc(", ".join(s["tags"])), ""),
            (esc(s["text"]), "text"),
        ])
        classes.append(" ".join(c for c, on in (("target", s["is_target"]),
                                                ("trimmed", not s["analysed"])) if on))
    summary = (f"rank {rollout['rank']}, S = "
               f"{_fmt(rollout['distinctiveness_score'], 4)} (p = {_fmt(rollout['p_value_score'], 4)}, "
               f"{data.params.permutations} permutations); analysed: {rollout['n_sentences']} "
               f"sentences, {rollout['n_va']} targets; original: {rollout['n_sentences_original']} "
               f"sentences, {rollout['n_va_original']} targets")
    body = f"""
<p><a href="../index.html">← all rollouts</a></p>
<h1>{esc(rid)}</h1>
<p class="muted">{esc(summary)}. Model {esc(data.model)}, tag <code>{esc(data.params.tag)}</code>.
Heatmap color: 0 to the 99th percentile of the lower triangle; red bands mark target
sentences. Axes use the original sentence index.</p>
{''.join(blocks)}
<h2>Sentences</h2>
<p class="muted">r is the analysed index (empty: trimmed); ★ marks target sentences;
<a href="meta.json">meta.json</a></p>
{table(["idx", "r", "target", "tags", "text"], rows, classes)}
"""
    return page(f"{rid}: attention report", body, page_charts)


def _when(value) -> str:
    if value is None:
        return "?"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
