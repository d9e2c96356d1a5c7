"""Ingest across many workers and GPUs with Ray: one actor per worker, one committer.

Each worker is a Ray actor (`CaptureWorker`) that loads the model once (one GPU per actor
where the cluster has GPUs, one CPU otherwise) and runs the model pass of one rollout at a
time. The driver hands out rollouts from a queue, longest first, one per idle actor, and
gets each rollout's sentence matrices back through Ray's object store; the pipeline (the
`on_result` callback) writes and commits them, so only the driver ever opens the
warehouse. A worker that dies (killed, out of memory) is replaced and its rollout retried
once, on the replacement or any other worker; a second death reports the rollout through
`on_failure`, like any failed rollout. Actors are killed, and a runtime this module started
is shut down, however the run ends (Ctrl-C included).

Only `cli.py ingest --ray` imports this module: the serial path never imports Ray.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Keep a local runtime light: no usage report, no dashboard (set before Ray is imported).
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")

import ray  # noqa: E402  (after the environment above)
from ray.exceptions import RayActorError  # noqa: E402

from ingest.pipeline import RayCaptureError  # noqa: E402

RETRIES_AFTER_WORKER_DEATH = 1
# Test hook: while the file this names exists, the first worker to reach a layer deletes it
# and kills itself with SIGKILL (exactly one worker dies, mid-rollout). Unset outside tests.
KILL_ONCE_ENV = "VA_RAY_KILL_WORKER_ONCE"


@dataclass
class CaptureResult:
    """One rollout's model pass, as a worker sends it back through the object store."""

    info: object  # the worker's ModelInfo
    device: str
    token_spans: list[tuple[int, int]]
    n_tokens: int
    seconds: float
    n_sentences: int
    lower: np.ndarray  # [layer, head, cell] float32: the lower triangle j <= i of each matrix
    peak_gpu_bytes: int | None = None
    worker_pid: int | None = None

    def layers(self):
        """Each layer's `[head, sentence_i, sentence_j]` matrices (zeros above the diagonal)."""
        rows, cols = np.tril_indices(self.n_sentences)
        for packed in self.lower:
            mats = np.zeros((packed.shape[0], self.n_sentences, self.n_sentences), np.float32)
            mats[:, rows, cols] = packed
            yield mats


@ray.remote
class CaptureWorker:
    """Loads the model once; computes one rollout's sentence attention per call."""

    def __init__(self, model: str, device: str, dtype: str, model_name: str | None):
        from transformers.utils import logging as hf_logging

        from ingest.model import ModelLoadError, load_model

        hf_logging.disable_progress_bar()  # no bars in worker logs
        self.error = None
        try:
            self.loaded = load_model(model, device=device, dtype=dtype, name=model_name)
        except ModelLoadError as exc:  # reported by the driver, once, as one line
            self.error = str(exc)

    def ready(self) -> str | None:
        """None once the model is loaded, else why it could not be."""
        return self.error

    def pid(self) -> int:
        return os.getpid()

    def compute(self, text: str, spans: list, query_block: int):
        """A CaptureResult, or the error text of a rollout the model cannot take."""
        from ingest.capture import CaptureError
        from ingest.pipeline import capture_text

        n = len(spans)
        rows, cols = np.tril_indices(n)
        lower = []

        def keep(layer: int, mats: np.ndarray) -> None:  # mats: [head, sentence_i, sentence_j]
            lower.append(mats[:, rows, cols])
            _kill_once_hook()

        try:
            tokens, n_tokens, seconds = capture_text(self.loaded, text, spans, query_block, keep)
        except CaptureError as exc:
            return str(exc)
        return CaptureResult(
            info=self.loaded.info, device=self.loaded.device, token_spans=tokens, n_tokens=n_tokens,
            seconds=seconds, n_sentences=n, lower=np.stack(lower),
            peak_gpu_bytes=self.loaded.peak_gpu_bytes(), worker_pid=os.getpid(),
        )


def connect(address: str) -> bool:
    """Join or start a Ray runtime; True when this call started it (and must shut it down).

    'local' starts one on this machine (or uses the one this process already runs, e.g.
    a test's `ray.init(num_cpus=2)`); 'auto' or 'ray://host:port' joins a cluster.
    """
    if ray.is_initialized():
        return False
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address == "local":
            ray.init(**kwargs)
        else:
            ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise RayCaptureError(f"cannot reach a Ray cluster at '{address}': {exc}") from None
    return True


def cluster_gpus() -> int:
    return int(ray.cluster_resources().get("GPU", 0))


def run_on_ray(jobs: list, options, *, on_result: Callable, on_failure: Callable) -> None:
    """Compute every job (pipeline `_Job`s, longest first) on Ray actors.

    `on_result(job, CaptureResult)` commits a rollout; `on_failure(job, message)` records a
    failed one (and raises without --keep-going).
    """
    started_here = connect(options.ray)
    actors: list = []
    try:
        use_gpus = options.device != "cpu" and cluster_gpus() > 0
        n_workers = options.workers or (cluster_gpus() if use_gpus else 1)
        device = options.device if options.device != "auto" else ("cuda" if use_gpus else "cpu")
        resources = {"num_gpus": 1} if use_gpus else {"num_cpus": 1}

        def new_actor():
            actor = CaptureWorker.options(**resources).remote(
                options.model, device, options.dtype, options.model_name)
            actors.append(actor)
            return actor

        pool = [new_actor() for _ in range(min(n_workers, len(jobs)))]
        _check_ready(pool)
        _schedule(jobs, pool, new_actor, options.query_block, on_result, on_failure)
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if started_here:
            ray.shutdown()


def _check_ready(pool: list) -> None:
    try:
        errors = ray.get([actor.ready.remote() for actor in pool])
    except RayActorError as exc:
        raise RayCaptureError(f"a Ray worker died while loading the model: {exc}") from None
    for error in errors:
        if error is not None:
            from ingest.model import ModelLoadError

            raise ModelLoadError(error)


def _schedule(jobs: list, pool: list, new_actor: Callable, query_block: int,
              on_result: Callable, on_failure: Callable) -> None:
    """One rollout in flight per actor; an actor that finishes takes the next from the queue."""
    queue = deque((job, 0) for job in jobs)  # (job, deaths so far)
    in_flight: dict = {}  # object ref -> (actor, job, deaths)

    def submit(actor) -> None:
        if queue:
            job, deaths = queue.popleft()
            ref = actor.compute.remote(job.text, job.spans, query_block)
            in_flight[ref] = (actor, job, deaths)

    for actor in pool:
        submit(actor)
    while in_flight:
        (ref,), _ = ray.wait(list(in_flight), num_returns=1)
        actor, job, deaths = in_flight.pop(ref)
        try:
            result = ray.get(ref)
        except RayActorError as exc:
            ray.kill(actor, no_restart=True)
            if deaths < RETRIES_AFTER_WORKER_DEATH:
                queue.appendleft((job, deaths + 1))  # next: on whichever worker is free first
            else:
                on_failure(job, f"its worker died {deaths + 1} times ({_reason(exc)})")
            if queue:
                replacement = new_actor()
                _check_ready([replacement])
                submit(replacement)
            continue
        if isinstance(result, str):
            on_failure(job, result)
        else:
            on_result(job, result)
        submit(actor)


def _reason(exc: RayActorError) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _kill_once_hook() -> None:
    path = os.environ.get(KILL_ONCE_ENV)
    if not path:
        return
    try:
        os.unlink(path)  # only one process can remove it
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
