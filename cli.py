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
    return click.option(
        "--max-sentence-chars", type=int, default=100_000, show_default=True,
        help="A longer sentence makes its rollout fail (it is a pasted document, not a sentence).",
    )(f)


def format_option(f):
    return click.option(
        "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
        show_default=True, help="Output format.",
    )(f)


def metric_options(f):
    """The parameters of the metric macros (sql/), spelled the same in every command."""
    options = [
        click.option("--tag", default=None, help="Target tag [default: verbalized_evaluation_awareness]."),
        click.option("--proximity-ignore", type=int, default=None,
                     help="Ignore cells within this many sentences of the diagonal [default: 4]."),
        click.option("--no-control-depth", is_flag=True,
                     help="Use raw values instead of per-row ranks for vertical scores."),
        click.option("--score-type", type=click.Choice(["mean", "median"]), default=None,
                     help="Aggregate of a column's valid cells [default: mean]."),
        click.option("--no-trim", is_flag=True, help="Keep the first and last sentence."),
        click.option("--layers", default=None,
                     help="Comma-separated layers [default: representative early/mid/late]."),
        click.option("--model", "model_filter", default=None, help="Only this model's rows."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def debug_option(f):
    return click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")(f)


def friendly_errors(f):
    """Turn the library's own errors into one clear line (a traceback with --debug)."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except _library_errors() as exc:
            if kwargs.get("debug"):
                traceback.print_exc()
            raise click.ClickException(str(exc)) from None

    return wrapper


def _library_errors() -> tuple[type[Exception], ...]:
    """The project's error classes; torch-side ones only once their module is imported."""
    from ingest.rollouts import DiscoveryError, RolloutError
    from reports.build import ReportError
    from sql.query import QueryError
    from warehouse.store import WarehouseError

    errors = [RolloutError, DiscoveryError, WarehouseError, QueryError, ReportError]
    for module, names in (("ingest.model", ("ModelLoadError",)),
                          ("ingest.capture", ("CaptureOOMError", "CaptureError"))):
        loaded = sys.modules.get(module)
        errors += [getattr(loaded, n) for n in names if loaded and hasattr(loaded, n)]
    return tuple(errors)


def metric_params(tag, proximity_ignore, no_control_depth, score_type, no_trim, layers,
                  model_filter) -> dict:
    params = {"tag": tag, "proximity_ignore": proximity_ignore, "score_type": score_type}
    if no_control_depth:
        params["control_depth"] = False
    if no_trim:
        params["trim"] = False
    if layers:
        try:
            params["layers"] = [int(x) for x in layers.split(",") if x.strip()]
        except ValueError:
            raise click.BadParameter(f"'{layers}' is not a comma-separated list of integers",
                                     param_hint="--layers") from None
    return {k: v for k, v in params.items() if v is not None}


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

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """va-warehouse: sentence-level attention of reasoning traces in DuckDB.

    \b
    Example:
      python cli.py ingest ../shared/data/rollouts --pattern 'problem_*'
      python cli.py rank --tag uncertainty_management
      duckdb -readonly warehouse/va.duckdb -c 'select * from rollout_ranking'
    """


@main.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path())
@click.option("--pattern", default=None, help="Glob on rollout directory names, e.g. 'problem_9_va_*'.")
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
@click.option("--pattern", default=None, help="Glob on rollout directory names, e.g. 'problem_9_va_*'.")
@click.option("--model", default="Qwen/Qwen3-4B-Thinking-2507", show_default=True,
              help="Hugging Face Hub id or local checkpoint directory.")
@click.option("--model-name", default=None,
              help="Name stored in the warehouse [default: the Hub id or the directory's name].")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True)
@click.option("--text-source", type=click.Choice(["chunks", "full_cot"]), default="chunks",
              show_default=True, help="Model input: joined chunks, or base_solution.json full_cot.")
@click.option("--query-block", type=int, default=256, show_default=True,
              help="Query rows per attention block; smaller uses less memory.")
@click.option("--force", is_flag=True, help="Recompute even when the stored attention is current.")
@keep_going_option
@max_sentence_chars_option
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def ingest(roots, pattern, model, model_name, device, dtype, text_source, query_block, force,
           keep_going, max_sentence_chars, no_progress, warehouse_dir, lock_wait, debug):
    """Run the model over rollouts and store sentence attention of every layer and head.

    Every rollout is checked before the model runs: without --keep-going the first bad
    one stops the run before anything is written. Unchanged rollouts are skipped (a
    fingerprint of text, sentences, model, dtype and capture decides); each rollout is
    committed atomically, and the DuckDB file is only held during those commits. Exit
    code 1 when some failed.

    \b
    Example:
      python cli.py ingest ../shared/data/rollouts/math --model ./models/tiny-qwen3 --keep-going
    """
    from ingest.pipeline import IngestOptions
    from ingest.pipeline import ingest as run_ingest
    from warehouse.store import Warehouse

    options = IngestOptions(
        model=model, model_name=model_name, device=device, dtype=dtype, text_source=text_source,
        query_block=query_block, force=force, keep_going=keep_going, pattern=pattern,
        max_sentence_chars=max_sentence_chars, progress=not no_progress,
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
    from sql.query import run_query
    from warehouse.store import Warehouse

    print_frame(run_query(Warehouse(warehouse_dir), query, wait_s=lock_wait), fmt)


@main.command()
@metric_options
@format_option
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def rank(tag, proximity_ignore, no_control_depth, score_type, no_trim, layers, model_filter,
         fmt, warehouse_dir, lock_wait, debug):
    """Rank rollouts by distinctiveness: the sum over layers of the best head's |ΔVA|.

    \b
    Example:
      python cli.py rank --tag uncertainty_management --layers 1,2 --format csv
    """
    from sql.query import macro_frame
    from warehouse.store import Warehouse

    params = metric_params(tag, proximity_ignore, no_control_depth, score_type, no_trim, layers,
                           model_filter)
    frame = macro_frame(Warehouse(warehouse_dir), "rollout_ranking", params, model=model_filter,
                        wait_s=lock_wait)
    print_frame(frame, fmt)


@main.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", default=None, help="View name [default: the file's stem].")
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet"]), default=None,
              help="File format [default: from the extension].")
@warehouse_option
@debug_option
@friendly_errors
def attach(path, name, file_format, warehouse_dir, debug):
    """Register your own CSV or Parquet table (with a rollout_id column) as a view.

    \b
    Example:
      python cli.py attach my_grades.csv --name grades
      python cli.py sql "select r.*, g.grade from rollout_ranking r join grades g using (rollout_id)"
    """
    from warehouse.attach import attach_table
    from warehouse.store import Warehouse

    info = attach_table(Warehouse(warehouse_dir), path, name=name, file_format=file_format)
    click.echo(
        f"attached view '{info['name']}' over {info['path']} ({info['format']}): {info['rows']} rows, "
        f"{info['matched_rollouts']} matching a stored rollout_id"
    )


@main.command()
@metric_options
@click.option("--rollouts", "rollouts_glob", default=None, metavar="GLOB",
              help="Only rollouts whose id or directory name matches, e.g. 'problem_9_va_*'.")
@click.option("--out", default="reports/out", show_default=True, type=click.Path(file_okay=False),
              help="Report directory; replaced as a whole on each build.")
@click.option("--force", is_flag=True, help="Rebuild even when nothing changed.")
@click.option("--permutations", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Label permutations (and sign flips) behind every p-value of the report.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the permutations: the same seed gives the same p-values.")
@warehouse_option
@lock_wait_option
@debug_option
@friendly_errors
def report(tag, proximity_ignore, no_control_depth, score_type, no_trim, layers, model_filter,
           rollouts_glob, out, force, permutations, seed, warehouse_dir, lock_wait, debug):
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

    params = metric_params(tag, proximity_ignore, no_control_depth, score_type, no_trim, layers,
                           model_filter)
    result = build_report(Warehouse(warehouse_dir), out, rollouts=rollouts_glob, model=model_filter,
                          force=force, wait_s=lock_wait, permutations=permutations, seed=seed,
                          **params)
    if result.skipped:
        click.echo(f"report skipped ({result.reason})")
    else:
        click.echo(f"report built ({result.reason}): {result.n_rollouts} rollouts of {result.model}, "
                   f"{len(result.rebuilt)} rollout pages built, the others kept; "
                   f"{result.n_files} files in {result.seconds:.1f} s")
    click.echo(str(result.index_path))


@main.command("tiny-model")
@click.option("--out", default=str(DEMO_MODEL_DIR), show_default=True, type=click.Path(file_okay=False))
@click.option("--layers", type=int, default=4, show_default=True)
@click.option("--heads", type=int, default=8, show_default=True)
@click.option("--kv-heads", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def tiny_model(out, layers, heads, kv_heads, seed):
    """Write a small random-weight Qwen3 checkpoint with the real Qwen3 tokenizer.

    \b
    Example:
      python cli.py tiny-model --out models/tiny-qwen3 --layers 8 --heads 16
    """
    from ingest.tiny_model import write_tiny_qwen3

    path = write_tiny_qwen3(out, n_layers=layers, n_heads=heads, n_kv_heads=kv_heads, seed=seed)
    click.echo(f"wrote {path}")


@main.command()
@warehouse_option
@click.option("--out", default="reports/out", show_default=True, type=click.Path(file_okay=False))
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
    from sql.query import macro_frame
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
