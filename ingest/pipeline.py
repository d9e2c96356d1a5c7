"""The ingest pipeline: rollout directories -> sentence attention -> warehouse.

First every rollout is read and checked, before anything is written: a bad one stops
the run there (nothing written), or with ``keep_going`` is reported and left out. Then,
for each good rollout in id order: decide from a fingerprint whether its attention for
this model is current, and if not run the model, streaming each layer's sentence
matrices to Parquet, then commit rollout and attention in one transaction
(warehouse.store). One rollout failing never touches another's data.

The DuckDB file is not held during a model pass: each commit opens its own short
connection, so readers (a `duckdb -readonly` shell, `cli.py status`) can open the file
between commits. While a reader keeps it open, commits are deferred and retried after
each rollout; only the run's last commit waits the full lock_wait_s for it. torch is
imported only when a rollout needs the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import resource
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ingest.progress import Progress, is_terminal
from ingest.rollouts import (
    BASE_SOLUTION,
    DEFAULT_MAX_SENTENCE_CHARS,
    DiscoveryError,
    Rollout,
    RolloutDir,
    RolloutError,
    discover,
    load_rollout,
)
from ingest.spans import CharSpan, char_spans
from warehouse.ingest_log import IngestLog
from warehouse.store import (
    AttentionRun,
    ModelInfo,
    PendingAttention,
    RolloutRecord,
    SentenceSpan,
    Warehouse,
    WarehouseError,
    WarehouseLockedError,
    code_version,
    crash_point,
)

DEFAULT_MODEL = "Qwen/Qwen3-4B-Thinking-2507"
# Bump when the capture changes what it computes: it invalidates every fingerprint.
CAPTURE_VERSION = 1


class RayCaptureError(Exception):
    """A Ray ingest could not start, or a rollout failed on its workers."""


@dataclass
class IngestOptions:
    model: str = DEFAULT_MODEL
    model_name: str | None = None  # defaults to the Hub id, or a local directory's name
    device: str = "auto"
    dtype: str = "float32"
    text_source: str = "chunks"
    query_block: int = 256
    force: bool = False
    keep_going: bool = False
    pattern: str | None = None
    max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS
    progress: bool = True
    # Ray executor: None runs serially in this process; 'local', 'auto' or 'ray://host:port'
    ray: str | None = None
    workers: int | None = None  # Ray actors [default: the cluster's GPUs, else 1]

    @property
    def executor(self) -> str:
        return "serial" if self.ray is None else "ray"


@dataclass
class IngestSummary:
    ingested: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (rollout_id, message)
    notes: list[str] = field(default_factory=list)  # per-rollout span reports and warnings
    n_tokens: int = 0
    model_seconds: float = 0.0
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    peak_gpu_bytes: int | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.n_tokens / self.model_seconds if self.model_seconds > 0 else 0.0


def to_record(rollout: Rollout) -> RolloutRecord:
    """The warehouse rows of one rollout (char spans in the 'chunks' text, METRICS.md §2)."""
    spans = char_spans(rollout.text, list(rollout.sentences))
    return RolloutRecord(
        rollout_id=rollout.rollout_id,
        rollout_name=rollout.name,
        root=str(rollout.root),
        source_path=str(rollout.path),
        sentences=list(rollout.sentences),
        char_spans=[(s.start, s.end) for s in spans],
        tags=[list(t) for t in rollout.tags],
        sentence_source=rollout.sentence_source,
        text_hash=rollout.text_hash,
        metadata=rollout.metadata,
        warnings=list(rollout.warnings),
        problem_id=rollout.problem_id,
        solution_folder=rollout.solution_folder,
        is_correct=rollout.is_correct,
        fields=[tuple(f) for f in rollout.fields],
        dependencies=[tuple(d) for d in rollout.dependencies],
    )


# --- text the model reads ------------------------------------------------------------


def model_text(rollout: Rollout, text_source: str) -> tuple[str, list[CharSpan]]:
    """The model input and each sentence's character span in it (METRICS.md §2)."""
    if text_source == "chunks":
        text = rollout.text
        if not text:
            raise RolloutError(rollout.rollout_id, rollout.sentence_source,
                               "holds only an empty sentence: no text for the model")
        return text, char_spans(text, list(rollout.sentences))
    if text_source != "full_cot":
        raise ValueError(f"unknown text source {text_source!r} (chunks or full_cot)")
    base = rollout.metadata.get("base_solution")
    if base is None:
        raise RolloutError(rollout.rollout_id, BASE_SOLUTION, "is missing (--text-source full_cot)")
    text = base.get("full_cot") if isinstance(base, dict) else None
    if not isinstance(text, str) or not text:
        raise RolloutError(rollout.rollout_id, BASE_SOLUTION, "has no 'full_cot' string")
    if not text.strip():
        raise RolloutError(rollout.rollout_id, BASE_SOLUTION, "has a blank 'full_cot'")
    spans = char_spans(text, list(rollout.sentences), whitespace_tolerant=True)
    missing = [k for k, s in enumerate(spans) if not s.found]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise RolloutError(
            rollout.rollout_id, BASE_SOLUTION,
            f"'full_cot' does not contain sentence(s) {shown} of {len(spans)}, even ignoring "
            "whitespace; use --text-source chunks for this rollout",
        )
    return text, spans


def span_report(rollout_id: str, spans: list[CharSpan]) -> str | None:
    """One line naming the sentences that needed a tolerant match, or None."""
    by_kind: dict[str, list[int]] = {}
    for k, span in enumerate(spans):
        if span.match != "exact":
            by_kind.setdefault(span.match, []).append(k)
    if not by_kind:
        return None
    parts = [f"{kind} match for sentence(s) {', '.join(map(str, ks))}" for kind, ks in by_kind.items()]
    return f"rollout '{rollout_id}': " + "; ".join(parts)


def fingerprint(rollout: Rollout, text: str, model: ModelInfo, options: IngestOptions) -> str:
    """What the stored attention depends on; equal fingerprints mean equal numbers."""
    payload = {
        "text": text,
        "sentences": list(rollout.sentences),
        "model_source": model.source,
        "model_revision": model.revision,
        "dtype": options.dtype,
        "text_source": options.text_source,
        "capture_version": CAPTURE_VERSION,
    }
    blob = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


# --- the pipeline --------------------------------------------------------------------


def check_rollouts(
    roots: Iterable[str],
    *,
    pattern: str | None,
    keep_going: bool,
    max_sentence_chars: int,
    text_source: str | None,
    summary: IngestSummary,
) -> list[RolloutDir]:
    """The rollout directories that read and check cleanly, before anything is written.

    Without keep_going the first problem raises (DiscoveryError or RolloutError); with
    it, each problem is recorded in summary.failed and that rollout (or root) left out.
    """
    discovery_errors: list[DiscoveryError] | None = [] if keep_going else None
    rollout_dirs = discover(roots, pattern, errors=discovery_errors)
    for exc in discovery_errors or []:
        summary.failed.append(("", str(exc)))
    good = []
    for rollout_dir in rollout_dirs:
        try:
            rollout = load_rollout(rollout_dir, max_sentence_chars=max_sentence_chars)
            if text_source is not None:
                model_text(rollout, text_source)
        except RolloutError as exc:
            if not keep_going:
                raise
            summary.failed.append((rollout_dir.rollout_id, str(exc)))
            continue
        good.append(rollout_dir)
    return good


def load(
    roots: Iterable[str],
    warehouse: Warehouse,
    *,
    pattern: str | None = None,
    keep_going: bool = False,
    max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS,
) -> IngestSummary:
    """Store rollouts, sentences and tags without running a model."""
    roots = list(roots)
    summary = IngestSummary()
    started = time.monotonic()
    rollout_dirs = check_rollouts(roots, pattern=pattern, keep_going=keep_going,
                                  max_sentence_chars=max_sentence_chars, text_source=None,
                                  summary=summary)
    with warehouse.write_lock():
        log = IngestLog.start(warehouse, "load", None, {"roots": roots, "pattern": pattern})
        try:
            for rollout_dir in rollout_dirs:
                try:
                    rollout = load_rollout(rollout_dir, max_sentence_chars=max_sentence_chars)
                except RolloutError as exc:  # changed on disk since the check
                    summary.failed.append((rollout_dir.rollout_id, str(exc)))
                    if not keep_going:
                        raise
                    continue
                summary.notes += [f"rollout '{rollout.rollout_id}': {w}" for w in rollout.warnings]
                outcome = warehouse.write_rollout(to_record(rollout))
                (summary.skipped if outcome == "unchanged" else summary.ingested).append(
                    rollout.rollout_id)
        except BaseException as exc:
            log.finish(summary, time.monotonic() - started, error=exc)
            raise
        summary.seconds = time.monotonic() - started
        log.finish(summary, summary.seconds)
    return summary


def ingest(
    roots: Iterable[str],
    warehouse: Warehouse,
    options: IngestOptions,
    *,
    echo: Callable[[str], None] = print,
) -> IngestSummary:
    """Run the model over every rollout under the roots and store its sentence attention.

    ``echo`` receives progress messages (the progress bar aside), e.g. that commits wait
    for another process; failures are in the summary.
    """
    from ingest.model_info import quick_describe

    roots = list(roots)
    summary = IngestSummary()
    started = time.monotonic()
    rollout_dirs = check_rollouts(roots, pattern=options.pattern, keep_going=options.keep_going,
                                  max_sentence_chars=options.max_sentence_chars,
                                  text_source=options.text_source, summary=summary)
    info = quick_describe(options.model, name=options.model_name)  # ModelLoadError if unknown
    params = {"roots": roots, **{k: v for k, v in dataclasses.asdict(options).items()
                                  if k != "progress"}}
    with warehouse.write_lock():
        log = IngestLog.start(warehouse, "ingest", info.name, params, executor=options.executor,
                              workers=options.workers if options.ray else 1)
        try:
            _ingest_all(rollout_dirs, warehouse, options, info, summary, echo)
        except BaseException as exc:
            summary.seconds = time.monotonic() - started
            log.finish(summary, summary.seconds, error=exc)
            raise
        summary.seconds = time.monotonic() - started
        summary.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        log.finish(summary, summary.seconds)
    return summary


# While another process holds the DuckDB file (an open `duckdb -readonly` shell), a
# computed rollout's commit is tried this long, then deferred: the model goes on with the
# next rollout, and the waiting commits are retried after it. Only at the end of the run
# does a commit wait the whole lock_wait_s (and then fail naming the holder).
COMMIT_TRY_S = 0.2


@dataclass
class _Commit:
    rollout_id: str
    record: RolloutRecord
    attention: PendingAttention | None = None  # None: the rollout's own rows only (skipped)
    n_tokens: int = 0
    seconds: float = 0.0


def _ingest_all(rollout_dirs, warehouse, options, info, summary, echo) -> None:
    waiting: list[_Commit] = []
    try:
        with Progress(len(rollout_dirs), enabled=options.progress) as progress:
            committer = _Committer(warehouse, summary, waiting, echo)
            if options.ray is None:
                _compute_all(rollout_dirs, warehouse, options, info, summary, committer, progress)
            else:
                _compute_on_ray(rollout_dirs, warehouse, options, info, summary, committer, progress)
    except Exception:
        with contextlib.suppress(WarehouseError):  # keep finished work if the file is free now
            _commit_waiting(waiting, warehouse, summary, wait_s=0)
        raise
    _commit_waiting(waiting, warehouse, summary, wait_s=None)


def _commit_waiting(waiting: list[_Commit], warehouse: Warehouse, summary: IngestSummary, *,
                    wait_s: float | None) -> None:
    """Commit the waiting rollouts in order; stop at the first the file's lock refuses.

    ``wait_s=None`` waits the warehouse's lock_wait_s and raises WarehouseLockedError.
    """
    while waiting:
        commit = waiting[0]
        try:
            warehouse.write_rollout(commit.record, commit.attention, wait_s=wait_s)
        except WarehouseLockedError:
            if wait_s is None:
                raise
            return
        waiting.pop(0)
        if commit.attention is None:
            summary.skipped.append(commit.rollout_id)
        else:
            summary.ingested.append(commit.rollout_id)
            summary.n_tokens += commit.n_tokens
            summary.model_seconds += commit.seconds


@dataclass
class _Committer:
    """The one place that commits: computed rollouts wait here while a reader holds the file."""

    warehouse: Warehouse
    summary: IngestSummary
    waiting: list[_Commit]
    echo: Callable[[str], None]
    told: bool = False

    def __call__(self, commit: _Commit) -> None:
        self.waiting.append(commit)
        _commit_waiting(self.waiting, self.warehouse, self.summary, wait_s=COMMIT_TRY_S)
        if self.waiting and not self.told:
            self.told = True
            self.echo(f"note: {self.warehouse.db_path} is open in another process: finished rollouts "
                      "wait to be committed (the model goes on; the last commit waits up to "
                      "--lock-wait)")


@dataclass
class _Job:
    """One checked rollout, ready for the model: its text, spans, rows and fingerprint."""

    rollout_id: str
    text: str
    spans: list[CharSpan]
    record: RolloutRecord
    fingerprint: str

    @property
    def n_sentences(self) -> int:
        return len(self.record.sentences)


def _prepare(rollout_dir: RolloutDir, options: IngestOptions, info: ModelInfo,
             summary: IngestSummary) -> _Job:
    """Read a rollout again (it may have changed since the check) and plan its model pass."""
    rid = rollout_dir.rollout_id
    rollout = load_rollout(rollout_dir, max_sentence_chars=options.max_sentence_chars)
    text, spans = model_text(rollout, options.text_source)
    summary.notes += [f"rollout '{rid}': {w}" for w in rollout.warnings]
    report = span_report(rid, spans)
    if report:
        summary.notes.append(report)
    return _Job(rid, text, spans, to_record(rollout), fingerprint(rollout, text, info, options))


def _is_current(job: _Job, warehouse: Warehouse, info: ModelInfo, options: IngestOptions) -> bool:
    return not options.force and warehouse.attention_fingerprint(info.name, job.rollout_id) == job.fingerprint


def _capture_failed(rid: str, exc: BaseException, summary: IngestSummary, options: IngestOptions,
                    progress: Progress) -> None:
    """Record a failed rollout (changed on disk, or too much for the model): the next one
    may well go through, so with keep_going the run goes on."""
    summary.failed.append((rid, str(exc)))
    progress.finished(rid, sentences=0, outcome="failed")
    if not options.keep_going:
        raise exc


def _compute_all(rollout_dirs, warehouse, options, info, summary, commit: _Committer,
                 progress: Progress) -> None:
    loaded = None  # the model is loaded on the first rollout that needs it
    for rollout_dir in rollout_dirs:
        rid = rollout_dir.rollout_id
        progress.working_on(rid)
        try:
            job = _prepare(rollout_dir, options, info, summary)
            if _is_current(job, warehouse, info, options):
                commit(_Commit(rid, job.record))  # tags or metadata may still have changed
                progress.finished(rid, sentences=job.n_sentences, outcome="skipped")
                continue
            if loaded is None:
                loaded = _load_model(options)
                info = loaded.info
            pending, n_tokens, seconds = _capture(loaded, job, options, warehouse, progress)
            commit(_Commit(rid, job.record, pending, n_tokens, seconds))
            summary.peak_gpu_bytes = loaded.peak_gpu_bytes()
            progress.finished(rid, sentences=job.n_sentences, tokens=n_tokens, seconds=seconds)
        except RolloutError as exc:  # changed on disk since the check
            _capture_failed(rid, exc, summary, options, progress)
        except Exception as exc:
            capture = sys.modules.get("ingest.capture")
            if capture is None or not isinstance(exc, capture.CaptureError):
                raise
            error = type(exc)(f"rollout '{rid}': {exc}")
            error.__cause__ = exc
            _capture_failed(rid, error, summary, options, progress)


def _compute_on_ray(rollout_dirs, warehouse, options, info, summary, commit: _Committer,
                    progress: Progress) -> None:
    """Unchanged rollouts are skipped here, before any worker starts; Ray computes the rest.

    Workers never open the warehouse: their sentence matrices come back through Ray's
    object store and are written and committed here, one rollout per transaction.
    """
    jobs = []
    for rollout_dir in rollout_dirs:
        rid = rollout_dir.rollout_id
        try:
            job = _prepare(rollout_dir, options, info, summary)
        except RolloutError as exc:
            _capture_failed(rid, exc, summary, options, progress)
            continue
        if _is_current(job, warehouse, info, options):
            commit(_Commit(rid, job.record))
            progress.finished(rid, sentences=job.n_sentences, outcome="skipped")
        else:
            jobs.append(job)
    if not jobs:
        return  # nothing to compute: no Ray runtime, no actors
    try:
        from ingest.ray_pool import run_on_ray
    except ImportError as exc:
        raise RayCaptureError(f"--ray needs Ray ({exc}): pip install -e '.[ray]' "
                              "(`make setup` installs it)") from None

    jobs.sort(key=lambda j: len(j.text), reverse=True)  # longest first, for balance

    def on_result(job: _Job, result) -> None:
        writer = warehouse.attention_writer(result.info, job.rollout_id, job.n_sentences,
                                            job.record.tags)
        with writer:
            for layer, mats in enumerate(result.layers()):
                writer.add_layer(layer, mats)  # [head, sentence_i, sentence_j]
        pending = _pending_attention(result.info, result.device, job, result.token_spans,
                                     result.n_tokens, result.seconds, options, writer)
        commit(_Commit(job.rollout_id, job.record, pending, result.n_tokens, result.seconds))
        if result.peak_gpu_bytes:
            summary.peak_gpu_bytes = max(summary.peak_gpu_bytes or 0, result.peak_gpu_bytes)
        progress.finished(job.rollout_id, sentences=job.n_sentences, tokens=result.n_tokens,
                          seconds=result.seconds)

    def on_failure(job: _Job, message: str) -> None:
        _capture_failed(job.rollout_id, RayCaptureError(f"rollout '{job.rollout_id}': {message}"),
                        summary, options, progress)

    run_on_ray(jobs, options, on_result=on_result, on_failure=on_failure)


def _load_model(options: IngestOptions):
    from ingest.model import load_model  # torch is heavy: import on use

    if options.progress and is_terminal(sys.stderr):
        return load_model(options.model, device=options.device, dtype=options.dtype,
                          name=options.model_name)
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar: --no-progress, or not a terminal
    try:
        return load_model(options.model, device=options.device, dtype=options.dtype,
                          name=options.model_name)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def capture_text(loaded, text: str, spans: list[CharSpan], query_block: int, on_layer):
    """The model pass of one rollout: token spans, then every layer's sentence matrices.

    Warehouse-free, so a Ray worker runs it too. Returns (token spans, tokens, seconds).
    """
    from ingest.capture import capture_sentence_attention
    from ingest.spans import token_spans

    started = time.monotonic()
    tokens = token_spans(loaded.tokenizer, text, spans)
    input_ids = loaded.encode(text)
    capture_sentence_attention(loaded, input_ids, tokens, query_block=query_block,
                               on_layer=on_layer)
    return tokens, int(input_ids.shape[-1]), time.monotonic() - started


def _capture(loaded, job: _Job, options: IngestOptions, warehouse: Warehouse, progress: Progress):
    writer = warehouse.attention_writer(loaded.info, job.rollout_id, job.n_sentences,
                                        job.record.tags)
    n_tokens = len(loaded.tokenizer.encode(job.text)) if progress.bars else 0
    # Inner bar over layer x tokens: a long trace shows progress within the rollout.
    layer_bar = progress.layer_bar(loaded.info.n_layers * n_tokens)

    def on_layer(layer: int, mats) -> None:  # mats: [head, sentence_i, sentence_j]
        writer.add_layer(layer, mats)
        layer_bar.update(n_tokens)
        crash_point("model_pass")

    with writer, layer_bar:
        tokens, n_tokens, seconds = capture_text(loaded, job.text, job.spans, options.query_block,
                                                 on_layer)
    pending = _pending_attention(loaded.info, loaded.device, job, tokens, n_tokens, seconds,
                                 options, writer)
    return pending, n_tokens, seconds


def _pending_attention(info: ModelInfo, device: str, job: _Job, tokens, n_tokens: int,
                       seconds: float, options: IngestOptions, writer) -> PendingAttention:
    sentence_spans = [
        SentenceSpan(s.start, s.end, t0, t1, s.match)
        for s, (t0, t1) in zip(job.spans, tokens, strict=True)
    ]
    run = AttentionRun(
        fingerprint=job.fingerprint, text_source=options.text_source, dtype=options.dtype,
        device=device, n_tokens=n_tokens, query_block=options.query_block,
        duration_s=seconds, parameters={"capture_version": CAPTURE_VERSION, "run": uuid.uuid4().hex},
        code_version=code_version(),
    )
    return PendingAttention(info, writer, sentence_spans, run)
