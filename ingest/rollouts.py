"""Discover and read rollout directories (METRICS.md §1).

A rollout directory is any directory that holds ``chunks.json`` or
``chunks_labeled.json``. Its id is its path relative to the root it was found
under (posix separators), so the same tree always gives the same ids; two roots
that hold the same relative path are an error, never a silent overwrite.

Loading is strict where the reference would compute on garbage (invalid JSON,
sentences that are not strings, no sentences at all) and lenient, with a warning
recorded on the rollout, where METRICS.md §1 defines a repair (labels shorter or
longer than the sentences, an entry that is not a dict, ``function_tags`` that is
not a list, a ``chunk_idx`` that disagrees with the position).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sql.defaults import DEFAULTS

CHUNKS = "chunks.json"
LABELS = "chunks_labeled.json"
BASE_SOLUTION = "base_solution.json"
ROLLOUT_MARKERS = (CHUNKS, LABELS)
DEFAULT_TAG = DEFAULTS["tag"]
# A sentence longer than this cannot be a sentence: it is a whole document pasted
# into one chunk, and would dominate (or overflow) the model pass.
DEFAULT_MAX_SENTENCE_CHARS = 100_000


class RolloutError(Exception):
    """A rollout directory cannot be loaded."""

    def __init__(self, rollout: str, file: str, problem: str):
        self.rollout, self.file, self.problem = rollout, file, problem
        super().__init__(f"rollout '{rollout}': {file} {problem}")


class DiscoveryError(Exception):
    """The roots given do not name a usable set of rollout directories."""


@dataclass(frozen=True)
class Rollout:
    """One rollout: its sentences, their tags, and every other JSON file as metadata."""

    rollout_id: str
    root: Path
    path: Path
    sentences: tuple[str, ...]
    tags: tuple[tuple[str, ...], ...]  # tags[k] = the function_tags of sentence k
    sentence_source: str  # CHUNKS, or LABELS when chunks.json is absent
    metadata: dict = field(default_factory=dict)  # file stem -> parsed JSON
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def text(self) -> str:
        """The model input of text source 'chunks' (METRICS.md §2)."""
        return "\n".join(self.sentences)

    @property
    def text_hash(self) -> str:
        payload = json.dumps(list(self.sentences), ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(payload).hexdigest()

    @property
    def problem_id(self) -> str | None:
        match = re.match(r"(?:problem|item)_([^_]+)", self.name)
        return match.group(1) if match else None

    @property
    def solution_folder(self) -> str | None:
        for part in reversed(Path(self.rollout_id).parts[:-1]):
            if part.endswith("_base_solution"):
                return part
        for parent in self.path.parents:
            if parent.name.endswith("_base_solution"):
                return parent.name
        return None

    @property
    def is_correct(self) -> bool | None:
        folder = self.solution_folder
        if folder == "correct_base_solution":
            return True
        if folder == "incorrect_base_solution":
            return False
        value = self.metadata.get("base_solution", {})
        value = value.get("is_correct") if isinstance(value, dict) else None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return None

    def target_mask(self, tag: str = DEFAULT_TAG) -> list[bool]:
        return [tag in sentence_tags for sentence_tags in self.tags]


@dataclass(frozen=True)
class RolloutDir:
    rollout_id: str
    root: Path
    path: Path


# --- discovery -------------------------------------------------------------------------


def discover(
    roots: Iterable[str | os.PathLike],
    pattern: str | None = None,
    *,
    errors: list[DiscoveryError] | None = None,
) -> list[RolloutDir]:
    """Every rollout directory under the roots, sorted by id.

    ``pattern`` is a glob matched against the directory name (``problem_9_va_*``) or,
    when it contains a '/', against the rollout id. Symbolic links are followed once:
    a link back into a directory already visited (a loop) is skipped.

    A root that does not exist or holds no rollout, and a rollout id held by two roots,
    raise DiscoveryError; when an ``errors`` list is given (``--keep-going``) they are
    appended to it instead, and discovery goes on without that root, or without either
    copy of that id (which one is meant cannot be known).
    """
    found: dict[str, RolloutDir] = {}
    conflicts: set[str] = set()
    roots = list(roots)
    if not roots:
        raise DiscoveryError("no root given: name at least one directory that holds rollouts")

    def fail(message: str) -> None:
        if errors is None:
            raise DiscoveryError(message)
        errors.append(DiscoveryError(message))

    for root_arg in roots:
        root = Path(root_arg).expanduser().absolute()
        if not root.exists():
            fail(f"root '{root_arg}' does not exist")
            continue
        if not root.is_dir():
            fail(f"root '{root_arg}' is not a directory")
            continue
        matched = 0
        for path in _walk_rollout_dirs(root):
            rollout_id = path.name if path == root else path.relative_to(root).as_posix()
            if pattern and not _matches(pattern, path.name, rollout_id):
                continue
            matched += 1
            if rollout_id in found or rollout_id in conflicts:
                first = found.pop(rollout_id, None)
                conflicts.add(rollout_id)
                fail(
                    f"rollout id '{rollout_id}' is held by two roots: "
                    f"{first.path if first else 'an earlier root'} and {path}; load them into "
                    "separate warehouses or pass roots whose relative paths differ"
                )
                continue
            found[rollout_id] = RolloutDir(rollout_id, root, path)
        if matched == 0:
            what = f" matching '{pattern}'" if pattern else ""
            fail(
                f"root '{root_arg}' holds no rollout directory{what} "
                f"(a directory with {CHUNKS} or {LABELS})"
            )
    return [found[key] for key in sorted(found)]


def _matches(pattern: str, name: str, rollout_id: str) -> bool:
    return fnmatch.fnmatchcase(rollout_id if "/" in pattern else name, pattern)


def _walk_rollout_dirs(root: Path) -> Iterator[Path]:
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            stat = directory.stat()
        except OSError:
            continue  # a dangling link
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            continue  # a symlink loop or a second link to the same directory
        seen.add(key)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        names = {entry.name for entry in entries}
        if any(marker in names for marker in ROLLOUT_MARKERS):
            yield directory
            continue  # a rollout's own subfolders (resamples, caches) are not rollouts
        for entry in reversed(entries):
            if entry.is_dir(follow_symlinks=True) and not entry.name.startswith("."):
                stack.append(Path(entry.path))


# --- reading one rollout ---------------------------------------------------------------


def load_rollout(
    rollout_dir: RolloutDir, *, max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS
) -> Rollout:
    """Read one rollout directory; raise RolloutError naming the file and the problem."""
    rid, path = rollout_dir.rollout_id, rollout_dir.path
    warnings: list[str] = []
    try:
        rid.encode("utf-8")
    except UnicodeEncodeError:
        shown = rid.encode("utf-8", "backslashreplace").decode("utf-8")
        raise RolloutError(shown, "its directory name", "is not UTF-8: rename the directory") from None

    labels_path = path / LABELS
    if not labels_path.is_file():
        has_chunks = (path / CHUNKS).is_file()
        raise RolloutError(
            rid, LABELS,
            "is missing" + (" (chunks.json alone carries no labels)" if has_chunks else ""),
        )
    labels = _read_json(rid, labels_path, warnings)
    if not isinstance(labels, list):
        raise RolloutError(rid, LABELS, f"must hold a list of chunk entries, not {_kind(labels)}")

    if (path / CHUNKS).is_file():
        sentences = _sentences_from_chunks(rid, _read_json(rid, path / CHUNKS, warnings))
        source = CHUNKS
    else:
        sentences = _sentences_from_labels(rid, labels)
        source = LABELS
    if not sentences:
        raise RolloutError(rid, source, "holds no sentences")
    for k, sentence in enumerate(sentences):
        if len(sentence) > max_sentence_chars:
            raise RolloutError(
                rid, source,
                f"sentence {k} is {len(sentence):,} characters long (limit "
                f"{max_sentence_chars:,}); split it, or raise the limit with --max-sentence-chars",
            )

    tags = _tags_from_labels(rid, labels, len(sentences), warnings)

    metadata = {}
    for file in sorted(path.iterdir()):
        if file.suffix == ".json" and file.name not in ROLLOUT_MARKERS and file.is_file():
            metadata[file.stem] = _read_json(rid, file, warnings)

    return Rollout(
        rollout_id=rid,
        root=rollout_dir.root,
        path=path,
        sentences=tuple(sentences),
        tags=tuple(tags),
        sentence_source=source,
        metadata=metadata,
        warnings=tuple(warnings),
    )


def _read_json(rid: str, path: Path, warnings: list[str] | None = None):
    """Parse one JSON file; every way it can be unusable becomes a RolloutError.

    NaN and Infinity (accepted by Python, not JSON) become null, with a warning: the
    warehouse stores metadata in DuckDB JSON columns, which need standard JSON.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RolloutError(rid, path.name, f"cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RolloutError(
            rid, path.name, f"is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    constants: list[str] = []

    def non_json_constant(name: str) -> None:
        constants.append(name)
        return None

    try:
        value = json.loads(text, parse_constant=non_json_constant)
    except json.JSONDecodeError as exc:
        raise RolloutError(
            rid, path.name, f"is not valid JSON ({exc.msg}, line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise RolloutError(rid, path.name, "is nested too deeply to be read") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise RolloutError(rid, path.name, f"holds a value Python cannot read ({exc})") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start]
        raise RolloutError(
            rid, path.name, f"holds text that is not valid Unicode (unpaired surrogate \\u{ord(bad):04x})"
        ) from None
    except RecursionError:
        raise RolloutError(rid, path.name, "is nested too deeply to be read") from None
    if constants:
        if warnings is None:
            raise RolloutError(rid, path.name, f"holds {constants[0]}, which is not JSON")
        warnings.append(f"{path.name}: {', '.join(sorted(set(constants)))} replaced by null")
    return value


def _sentences_from_chunks(rid: str, obj) -> list[str]:
    if not isinstance(obj, dict):
        raise RolloutError(rid, CHUNKS, f"must hold an object with key 'chunks', not {_kind(obj)}")
    if "chunks" not in obj:
        raise RolloutError(rid, CHUNKS, "has no key 'chunks'")
    chunks = obj["chunks"]
    if not isinstance(chunks, list):
        raise RolloutError(rid, CHUNKS, f"'chunks' must be a list of strings, not {_kind(chunks)}")
    for k, chunk in enumerate(chunks):
        if not isinstance(chunk, str):
            raise RolloutError(rid, CHUNKS, f"'chunks'[{k}] is {_kind(chunk)}, not a string")
    return list(chunks)


def _sentences_from_labels(rid: str, labels: list) -> list[str]:
    """The fallback of METRICS.md §1: the 'chunk' strings of chunks_labeled.json."""
    sentences = []
    for k, entry in enumerate(labels):
        chunk = entry.get("chunk") if isinstance(entry, dict) else None
        if not isinstance(chunk, str):
            raise RolloutError(
                rid, LABELS,
                f"entry {k} has no 'chunk' string, and there is no chunks.json to take "
                "the sentences from",
            )
        sentences.append(chunk)
    return sentences


def _tags_from_labels(rid: str, labels: list, n: int, warnings: list[str]) -> list[tuple[str, ...]]:
    if len(labels) != n:
        fix = "truncated" if len(labels) > n else "the rest have no tags"
        warnings.append(f"{LABELS} has {len(labels)} entries for {n} sentences ({fix})")
    tags: list[tuple[str, ...]] = []
    for k in range(n):
        entry = labels[k] if k < len(labels) else None
        if entry is None:
            tags.append(())
            continue
        if not isinstance(entry, dict):
            warnings.append(f"{LABELS} entry {k} is {_kind(entry)}, not an object (no tags)")
            tags.append(())
            continue
        idx = entry.get("chunk_idx")
        if idx is not None and idx != k:
            warnings.append(
                f"{LABELS} entry {k} has chunk_idx {idx!r} (labels are taken by position)"
            )
        function_tags = entry.get("function_tags", [])
        if not isinstance(function_tags, list):
            warnings.append(
                f"{LABELS} entry {k}: function_tags is {_kind(function_tags)}, not a list (no tags)"
            )
            tags.append(())
            continue
        strings = [t for t in function_tags if isinstance(t, str)]
        if len(strings) != len(function_tags):
            warnings.append(f"{LABELS} entry {k}: non-string function_tags ignored")
        tags.append(tuple(dict.fromkeys(strings)))  # unique, order kept
    return tags


def _kind(value) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


# --- many rollouts ---------------------------------------------------------------------


@dataclass
class LoadResult:
    rollouts: list[Rollout]
    errors: list[RolloutError]


def load_all(
    roots: Iterable[str | os.PathLike],
    pattern: str | None = None,
    *,
    keep_going: bool = True,
    max_sentence_chars: int = DEFAULT_MAX_SENTENCE_CHARS,
) -> LoadResult:
    """Discover and read every rollout; with keep_going, collect errors instead of raising."""
    result = LoadResult([], [])
    for rollout_dir in discover(roots, pattern):
        try:
            result.rollouts.append(load_rollout(rollout_dir, max_sentence_chars=max_sentence_chars))
        except RolloutError as exc:
            if not keep_going:
                raise
            result.errors.append(exc)
    return result
