"""va-warehouse command line: thin wrappers that parse options and call the library.

Run `python cli.py --help`, or `python cli.py COMMAND --help` for one command.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path

import click

from sql.defaults import DEFAULTS

HERE = Path(__file__).resolve().parent
DEFAULT_WAREHOUSE = "warehouse"
DEMO_ROOT = HERE / "examples" / "va_sample"
DEMO_MODEL_DIR = HERE / "models" / "tiny-qwen3"


# --- shared options --------------------------------------------------------------------

def warehouse_option(f):
    return click.option(
        "--warehouse", "warehouse_dir", default=DEFAULT_WAREHOUSE, show_default=True,
        type=click.Path(file_okay=False), help="Directory holding the DuckDB file and Parquet store.",
    )(f)


def lock_wait_option(f):
    return click.option(
        "--lock-wait", default=30.0, show_default=True, type=float,
        help="Seconds to wait for another process that holds the warehouse (README: "
             "'Locking model').",
    )(f)


def keep_going_option(f):
    return click.option(
        "--keep-going", is_flag=True,
        help="Skip bad rollouts (and bad roots) instead of stopping at the first; exit code 1 "
             "when some failed.",
    )(f)


def max_sentence_chars_option(f):
    from ingest.rollouts import DEFAULT_MAX_SENTENCE_CHARS

    return click.option(
        "--max-sentence-chars", type=int, default=DEFAULT_MAX_SENTENCE_CHARS, show_default=True,
        help="A longer sentence makes its rollout fail (it is a pasted document, not a sentence).",
    )(f)


def pattern_option(f):
    return click.option(
        "--pattern", default=None, help="Glob on rollout directory names, e.g. 'problem_9_va_*'.",
    )(f)


def report_out_option(f):
    return click.option(
        "--out", default="reports/out", show_default=True, type=click.Path(file_okay=False),
        help="Report directory; replaced as a whole on each build.",
    )(f)


def format_option(f):
    return click.option(
        "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
        show_default=True, help="Output format.",
    )(f)


def renamed_option(old: str, new: str, why: str):
    """A hidden ``old`` spelling that fails with one line naming ``new``.

    For flags whose old spelling means something else in other commands: accepting it
    silently would let the same word mean two things.
    """
    def fail(ctx, _param, value):
        if value is not None:
            raise click.ClickException(f"{ctx.info_name}: {old} is now {new} ({why})")

    return click.option(old, hidden=True, expose_value=False, is_eager=True, callback=fail)


def _default(name: str) -> str:
    return f"[default: {DEFAULTS[name]}]"


def metric_options(f):
    """The parameters of the metric macros (sql/), spelled the same in every command.

    Unset options take the macros' own defaults (sql/defaults.py); the command receives
    them as one ``metric`` dict of the named arguments given, plus ``model_filter``.
    """
    options = [
        click.option("--tag", default=None, help=f"Target tag {_default('tag')}."),
        click.option("--proximity-ignore", type=int, default=None,
                     help="Ignore cells within this many sentences of the diagonal "
                          f"{_default('proximity_ignore')}."),
        click.option("--control-depth/--no-control-depth", default=None,
                     help="Per-row ranks (or raw values) for vertical scores "
                          f"[default: {'ranks' if DEFAULTS['control_depth'] else 'raw values'}]."),
        click.option("--score-type", type=click.Choice(["mean", "median"]), default=None,
                     help=f"Aggregate of a column's valid cells {_default('score_type')}."),
        click.option("--trim/--no-trim", default=None,
                     help="Drop (or keep) the first and last sentence "
                          f"[default: {'drop' if DEFAULTS['trim'] else 'keep'}]."),
        click.option("--layers", default=None,
                     help="Comma-separated layers [default: representative early/mid/late]."),
        click.option("--model", "model_filter", default=None, help="Only this model's rows."),
    ]

    @functools.wraps(f)
    def wrapper(*args, tag, proximity_ignore, control_depth, score_type, trim, layers, **kwargs):
        metric = {"tag": tag, "proximity_ignore": proximity_ignore, "control_depth": control_depth,
                  "score_type": score_type, "trim": trim, "layers": _layer_list(layers)}
        return f(*args, metric={k: v for k, v in metric.items() if v is not None}, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _layer_list(layers: str | None) -> list[int] | None:
    if not layers:
        return None
    try:
        return [int(x) for x in layers.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"'{layers}' is not a comma-separated list of integers",
                                 param_hint="--layers") from None


# --- errors: one line each (README "Command line"); the traceback only with --debug ---

DEBUG_KEY = "va_warehouse.debug"


def _remember_debug(ctx, _param, value):
    if value:
        ctx.meta[DEBUG_KEY] = True  # meta is shared by the group's and the command's context
    return value


def debug_option(f):
    return click.option("--debug", is_flag=True, callback=_remember_debug,
                        help="Show full tracebacks on errors.")(f)


def friendly_errors(f):
    """Turn any error of the command into one clear line (a traceback with --debug)."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except Exception as exc:
            ctx = click.get_current_context(silent=True)
            debug = kwargs.get("debug") or (ctx is not None and ctx.meta.get(DEBUG_KEY))
            raise _click_error(exc, debug=bool(debug)) from None

    return wrapper


class OneLineErrors(click.Group):
    """The group behind every command: whatever a command raises ends as one line."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Exception as exc:
            raise _click_error(exc, debug=bool(ctx.meta.get(DEBUG_KEY))) from None


def _click_error(exc: Exception, *, debug: bool) -> Exception:
    if isinstance(exc, (click.ClickException, click.exceptions.Exit, click.Abort)):
        return exc
    if debug:
        traceback.print_exception(exc)
    return click.ClickException(error_line(exc))


def error_line(exc: Exception) -> str:
    """One line for any error: the library's own text, or the OS's, DuckDB's, a bug's."""
    import duckdb

    from warehouse import faults

    if faults.is_disk_full(exc) and not _is_library_error(exc):
        where = Path(getattr(exc, "filename", None) or Path.cwd())
        return faults.disk_full_message(where, None)
    if _is_library_error(exc):
        return _one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
        return f"{paths}: {exc.strerror}" if paths else exc.strerror
    if isinstance(exc, duckdb.Error):
        return f"DuckDB: {_one_line(str(exc))}"
    return (f"unexpected {type(exc).__name__}: {_one_line(str(exc))} (run again with --debug "
            "for the traceback, and please report it)")


def _one_line(text: str) -> str:
    """A multi-line message (DuckDB's 'LINE 1:' context and caret) joined into one line."""
    lines = [line.strip() for line in text.splitlines()]
    return " ".join(line for line in lines if line and set(line) - set("^ "))


def _is_library_error(exc: Exception) -> bool:
    """One of the project's error classes; torch-side ones only once their module is imported."""
    from ingest.rollouts import DiscoveryError, RolloutError
    from sql.query import QueryError
    from warehouse.store import WarehouseError

    errors = [RolloutError, DiscoveryError, WarehouseError, QueryError]
    for module, names in (("reports.build", ("ReportError",)), ("ingest.model", ("ModelLoadError",)),
                          ("ingest.capture", ("CaptureOOMError", "CaptureError")),
                          ("ingest.pipeline", ("RayCaptureError",))):
        loaded = sys.modules.get(module)
        errors += [getattr(loaded, n) for n in names if loaded and hasattr(loaded, n)]
    return isinstance(exc, tuple(errors))


def print_frame(frame, fmt: str) -> None:
    if fmt == "csv":
        click.echo(_lists_as_text(frame, ",").write_csv(), nl=False)  # CSV has no nested values
    elif fmt == "json":
        click.echo(json.dumps(frame.to_dicts(), default=str, indent=1))
    else:
        import polars as pl

        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=50, tbl_width_chars=250,
                       tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
            click.echo(str(_lists_as_text(frame, ", ", digits=4)))


def _lists_as_text(frame, separator: str, digits: int | None = None):
    """List columns (layers, heads, ΔVA by layer) as one string per cell; NULL items as 'nan'."""
    import polars as pl

    def as_text(name):
        item = pl.element()
        if frame.schema[name].inner.is_float() and digits is not None:
            item = item.round(digits)
        return pl.col(name).list.eval(item.cast(pl.Utf8).fill_null("nan")).list.join(separator)

    lists = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List)]
    return frame.with_columns(as_text(name) for name in lists)


# --- commands ------------------------------------------------------------------------------

@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@debug_option
def main(debug):
    """va-warehouse: sentence-level attention of reasoning traces in DuckDB.

    \b
    Example:
      python cli.py ingest ../shared/data/rollouts --pattern 'problem_*'
      python cli.py rank --tag uncertainty_management
      duckdb -readonly warehouse/va.duckdb -c 'select * from rollout_ranking'
    """


@main.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path())
@pattern_option
@keep_going_option
@max_sentence_chars_option
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def load(roots, pattern, keep_going, max_sentence_chars, warehouse_dir, lock_wait, debug):
    """Store rollouts, sentences and tags, without running a model.

    Every rollout is checked before anything is written: without --keep-going the first
    bad one stops the run and the warehouse is left as it was.

    \b
    Example:
      python cli.py load ../shared/data/rollouts --keep-going
    """
    from ingest.pipeline import load as load_rollouts
    from warehouse.store import Warehouse

    summary = load_rollouts(roots, Warehouse(warehouse_dir, lock_wait_s=lock_wait), pattern=pattern,
                            keep_going=keep_going, max_sentence_chars=max_sentence_chars)
    _print_summary(summary)
    if summary.failed:
        sys.exit(1)


@main.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path())
@pattern_option
@click.option("--checkpoint", default="Qwen/Qwen3-4B-Thinking-2507", show_default=True,
              help="Hugging Face Hub id or local checkpoint directory.")
@renamed_option("--model", "--checkpoint", "--model selects stored rows in rank and report")
@click.option("--model-name", default=None,
              help="Name stored in the warehouse, which --model selects in rank and report "
                   "[default: the Hub id or the directory's name].")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True)
@click.option("--text-source", type=click.Choice(["chunks", "full_cot"]), default="chunks",
              show_default=True, help="Model input: joined chunks, or base_solution.json full_cot.")
@click.option("--query-block", type=int, default=256, show_default=True,
              help="Query rows per attention block; smaller uses less memory.")
@click.option("--force", is_flag=True, help="Recompute even when the stored attention is current.")
@keep_going_option
@max_sentence_chars_option
@click.option("--no-progress", is_flag=True,
              help="No progress output (a terminal gets bars, a file or pipe one line per rollout).")
@click.option("--ray", "ray_address", default=None, metavar="ADDRESS",
              help="Run the model on Ray workers: 'local' starts Ray here; 'auto' or "
                   "'ray://host:port' joins a cluster. Needs the [ray] extra.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Ray workers, each loading the model once [default: the cluster's GPUs, else 1].")
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def ingest(roots, pattern, checkpoint, model_name, device, dtype, text_source, query_block, force,
           keep_going, max_sentence_chars, no_progress, ray_address, workers, warehouse_dir,
           lock_wait, debug):
    """Run the model over rollouts and store sentence attention of every layer and head.

    Every rollout is checked before the model runs: without --keep-going the first bad
    one stops the run before anything is written. Unchanged rollouts are skipped (a
    fingerprint of text, sentences, model, dtype and capture decides); each rollout is
    committed atomically, and the DuckDB file is only held during those commits. Exit
    code 1 when some failed.

    With --ray, Ray actors run the model (one GPU each where the cluster has GPUs) and
    this process commits their results; the warehouse ends the same as a serial run.

    \b
    Example:
      python cli.py ingest ../shared/data/rollouts/math --checkpoint ./models/tiny-qwen3 --keep-going
      python cli.py ingest ../shared/data/rollouts --ray local --workers 2
    """
    from ingest.pipeline import IngestOptions
    from ingest.pipeline import ingest as run_ingest
    from warehouse.store import Warehouse

    if workers is not None and ray_address is None:
        raise click.BadParameter("--workers needs --ray (the serial ingest has one worker)",
                                 param_hint="--workers")
    options = IngestOptions(
        model=checkpoint, model_name=model_name, device=device, dtype=dtype, text_source=text_source,
        query_block=query_block, force=force, keep_going=keep_going, pattern=pattern,
        max_sentence_chars=max_sentence_chars, progress=not no_progress, ray=ray_address,
        workers=workers,
    )
    summary = run_ingest(roots, Warehouse(warehouse_dir, lock_wait_s=lock_wait), options,
                         echo=click.echo)
    _print_summary(summary)
    if summary.failed:
        sys.exit(1)


def _print_summary(summary) -> None:
    for note in summary.notes:
        click.echo(f"note: {note}")
    for _rid, message in summary.failed:
        click.echo(f"failed: {message}")
    line = (f"{len(summary.ingested)} ingested, {len(summary.skipped)} skipped (unchanged), "
            f"{len(summary.failed)} failed in {summary.seconds:.1f} s")
    if summary.n_tokens:
        line += f"; {summary.n_tokens:,} tokens at {summary.tokens_per_second:,.0f} tokens/s"
    if summary.peak_rss_bytes:
        line += f"; peak memory {summary.peak_rss_bytes / 2**30:.2f} GiB"
    if summary.peak_gpu_bytes:
        line += f" (GPU {summary.peak_gpu_bytes / 2**30:.2f} GiB)"
    click.echo(line)


@main.command()
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def status(warehouse_dir, lock_wait, debug):
    """Show what the warehouse holds: rollouts, tags, models, attention, recent runs.

    \b
    Example:
      python cli.py status --warehouse warehouse/
    """
    from warehouse.status import format_status, warehouse_status
    from warehouse.store import Warehouse

    click.echo(format_status(warehouse_status(Warehouse(warehouse_dir), wait_s=lock_wait)))


@main.command()
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def check(warehouse_dir, lock_wait, debug):
    """Verify every stored file and table against the catalog; one line per problem.

    Compares each data file with the size, row count and checksum recorded when it was
    written, and each table's rows with its file. Exit code 1 when anything is wrong.

    \b
    Example:
      python cli.py check --warehouse warehouse/
    """
    from warehouse.check import check as check_warehouse
    from warehouse.store import Warehouse

    problems = check_warehouse(Warehouse(warehouse_dir, lock_wait_s=lock_wait))
    for problem in problems:
        click.echo(problem.line())
    click.echo(f"{len(problems)} problems found" if problems else "warehouse ok")
    if problems:
        sys.exit(1)


@main.command()
@click.option("--from", "from_root", default=None, type=click.Path(),
              help="Rollout root to reload rollouts lost in both copies from.")
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def repair(from_root, warehouse_dir, lock_wait, debug):
    """Rebuild what can be rebuilt; report what cannot. Never deletes a data file.

    Rebuilds a lost or unreadable catalog from the data files, restores a table or a
    small file from its intact twin, recomputes kept scores, drops lost attention so the
    next ingest recomputes it; with --from ROOT, reloads lost rollouts from their source.
    Also upgrades a warehouse written by older code and relinks a moved one.

    \b
    Example:
      python cli.py repair --warehouse warehouse/ --from ../shared/data/rollouts
    """
    from warehouse.check import repair as repair_warehouse
    from warehouse.store import Warehouse

    warehouse = Warehouse(warehouse_dir, lock_wait_s=lock_wait)
    report = repair_warehouse(warehouse)
    for line in report.fixed:
        click.echo(f"fixed: {line}")
    for line in report.not_fixed:
        click.echo(f"not fixed: {line}")
    if from_root is not None and report.dropped_rollouts:
        from ingest.pipeline import load as load_rollouts

        _print_summary(load_rollouts([from_root], warehouse, keep_going=True))
    click.echo("repair done" if not report.not_fixed else
               f"repair done; {len(report.not_fixed)} problems left (see above)")


@main.command("sql")
@click.argument("query")
@format_option
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def sql_command(query, fmt, warehouse_dir, lock_wait, debug):
    """Run one SQL query against the warehouse (read-only) and print the result.

    \b
    Example:
      python cli.py sql "select * from best_heads where rollout_id like '%va_07'" --format csv
    """
    from warehouse.query import run_query
    from warehouse.store import Warehouse

    print_frame(run_query(Warehouse(warehouse_dir), query, wait_s=lock_wait), fmt)


@main.command()
@click.option("--write", is_flag=True,
              help="Allow writes (holds the warehouse's write lock until the shell exits).")
@warehouse_option
@debug_option
@friendly_errors
def shell(write, warehouse_dir, debug):
    """Open the duckdb shell on the warehouse, read-only unless --write.

    Every view and macro works in it as in `cli.py sql`. While it is open it holds a
    read lock that makes `ingest` and `load` wait (README: 'Locking model').

    \b
    Example:
      python cli.py shell
      D select * from rollout_ranking;
    """
    from warehouse.shell import run_shell
    from warehouse.store import Warehouse

    sys.exit(run_shell(Warehouse(warehouse_dir), write=write))


@main.command()
@metric_options
@format_option
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def rank(metric, model_filter, fmt, warehouse_dir, lock_wait, debug):
    """Rank rollouts by distinctiveness: the sum over layers of the best head's |ΔVA|.

    \b
    Example:
      python cli.py rank --tag uncertainty_management --layers 1,2 --format csv
    """
    from warehouse.query import macro_frame
    from warehouse.store import Warehouse

    frame = macro_frame(Warehouse(warehouse_dir), "rollout_ranking", metric, model=model_filter,
                        wait_s=lock_wait)
    print_frame(frame, fmt)


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="View name [default: the file's stem].")
@click.option("--file-type", type=click.Choice(["csv", "parquet"]), default=None,
              help="File type [default: from the extension].")
@renamed_option("--format", "--file-type", "--format is the output format of sql and rank")
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def attach(path, name, file_type, warehouse_dir, lock_wait, debug):
    """Register your own CSV or Parquet table (with a rollout_id column) as a view.

    \b
    Example:
      python cli.py attach my_grades.csv --name grades
      python cli.py sql "select r.*, g.grade from rollout_ranking r join grades g using (rollout_id)"
    """
    from warehouse.attach import attach_table
    from warehouse.store import Warehouse

    info = attach_table(Warehouse(warehouse_dir, lock_wait_s=lock_wait), path, name=name,
                        file_format=file_type)
    click.echo(
        f"attached view '{info['name']}' over {info['path']} ({info['format']}): {info['rows']} rows, "
        f"{info['matched_rollouts']} matching a stored rollout_id"
    )


@main.command()
@metric_options
@click.option("--rollouts", "rollouts_glob", default=None, metavar="GLOB",
              help="Only rollouts whose id or directory name matches, e.g. 'problem_9_va_*'.")
@report_out_option
@click.option("--force", is_flag=True, help="Rebuild even when nothing changed.")
@click.option("--permutations", type=click.IntRange(min=0), default=DEFAULTS["permutations"],
              show_default=True,
              help="Label permutations (and sign flips) behind every p-value of the report.")
@click.option("--seed", type=int, default=DEFAULTS["seed"], show_default=True,
              help="Seed of the permutations: the same seed gives the same p-values.")
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def report(metric, model_filter, rollouts_glob, out, force, permutations, seed, warehouse_dir,
           lock_wait, debug):
    """Write the HTML report: ranking, per-rollout heatmaps and vertical scores, PNGs, CSV.

    Skips the work when neither the warehouse content nor the parameters changed since
    the report in --out was built; writes into a temporary directory and swaps it in.

    \b
    Example:
      python cli.py report --out reports/out --rollouts 'problem_9_va_*'
      python cli.py report --tag uncertainty_management --layers 3,17,31 --force
    """
    from reports.build import build_report
    from warehouse.store import Warehouse

    result = build_report(Warehouse(warehouse_dir), out, rollouts=rollouts_glob, model=model_filter,
                          force=force, wait_s=lock_wait, permutations=permutations, seed=seed,
                          **metric)
    if result.skipped:
        click.echo(f"report skipped ({result.reason})")
    else:
        click.echo(f"report built ({result.reason}): {result.n_rollouts} rollouts of {result.model}, "
                   f"{len(result.rebuilt)} rollout pages built, the others kept; "
                   f"{result.n_files} files in {result.seconds:.1f} s")
    click.echo(str(result.index_path))


@main.command("tiny-model")
@click.option("--out", default=str(DEMO_MODEL_DIR), show_default=True, type=click.Path(file_okay=False))
@click.option("--n-layers", type=int, default=4, show_default=True, help="Number of layers.")
@click.option("--n-heads", type=int, default=8, show_default=True, help="Query heads per layer.")
@click.option("--n-kv-heads", type=int, default=2, show_default=True, help="Key/value heads per layer.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
@renamed_option("--layers", "--n-layers", "a count; --layers lists layers in rank and report")
@renamed_option("--heads", "--n-heads", "a count, spelled as --n-layers")
@renamed_option("--kv-heads", "--n-kv-heads", "a count, spelled as --n-layers")
def tiny_model(out, n_layers, n_heads, n_kv_heads, seed):
    """Write a small random-weight Qwen3 checkpoint with the real Qwen3 tokenizer.

    \b
    Example:
      python cli.py tiny-model --out models/tiny-qwen3 --n-layers 8 --n-heads 16
    """
    from ingest.tiny_model import write_tiny_qwen3

    path = write_tiny_qwen3(out, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads, seed=seed)
    click.echo(f"wrote {path}")


@main.command()
@warehouse_option
@report_out_option
@debug_option
@friendly_errors
def demo(warehouse_dir, out, debug):
    """The whole pipeline on the bundled sample: tiny model, ingest, ranking, report.

    \b
    Example:
      python cli.py demo --warehouse warehouse/ --out reports/out
    """
    from ingest.pipeline import IngestOptions
    from ingest.pipeline import ingest as run_ingest
    from ingest.tiny_model import write_tiny_qwen3
    from reports.build import build_report
    from warehouse.query import macro_frame
    from warehouse.store import Warehouse

    model_dir = write_tiny_qwen3(DEMO_MODEL_DIR)
    click.echo(f"tiny model: {model_dir}")
    warehouse = Warehouse(warehouse_dir)
    summary = run_ingest([str(DEMO_ROOT)], warehouse, IngestOptions(model=str(model_dir)),
                         echo=click.echo)
    _print_summary(summary)
    ranking = macro_frame(warehouse, "rollout_ranking", {})
    print_frame(ranking.select("rank", "rollout_name", "distinctiveness_score", "n_va", "n_sentences",
                               "layers", "heads", "delta_va_vert_by_layer"), "table")
    result = build_report(warehouse, out)
    click.echo(f"report {'skipped' if result.skipped else 'built'} ({result.reason})")
    click.echo(f"report: {result.index_path}")


if __name__ == "__main__":
    main()
