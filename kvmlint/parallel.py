"""Read every file, prefilter cheaply, and parse the rest in worker processes."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kvmlint.extract import extract
from kvmlint.facts import FileFacts
from kvmlint.source import needs_parse, read_source

# Below this many files a worker pool costs more than it saves.
POOL_THRESHOLD = 16


@dataclass
class ExtractionResult:
    facts: dict[str, FileFacts] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    bytes_read: int = 0
    files_read: int = 0


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _extract_item(item: tuple[str, bytes]) -> FileFacts:
    path, data = item
    return extract(path, data)


def extract_all(
    root: Path,
    files: list[str] | tuple[str, ...],
    jobs: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExtractionResult:
    result = ExtractionResult()
    to_parse: list[tuple[str, bytes]] = []
    for relpath in files:
        source = read_source(root / relpath)
        if source.problem:
            result.skipped.append((relpath, source.problem))
            continue
        result.files_read += 1
        result.bytes_read += len(source.data)
        if needs_parse(source.data):
            to_parse.append((relpath, source.data))
    jobs = jobs or default_jobs()
    total = len(to_parse)
    if jobs <= 1 or total < POOL_THRESHOLD:
        parsed = map(_extract_item, to_parse)
        _collect(parsed, result, total, on_progress)
    else:
        # Big files first so that no worker is left with a long tail.
        to_parse.sort(key=lambda item: -len(item[1]))
        context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        with context.Pool(jobs) as pool:
            _collect(pool.imap_unordered(_extract_item, to_parse, chunksize=4), result, total, on_progress)
    result.facts = dict(sorted(result.facts.items()))
    return result


def _collect(parsed, result: ExtractionResult, total: int, on_progress) -> None:
    for done, facts in enumerate(parsed, 1):
        result.facts[facts.path] = facts
        if on_progress:
            on_progress(done, total)
