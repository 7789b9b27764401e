"""Read, prefilter and parse files in worker processes, taking unchanged files from the cache.

The main process only stats files and asks the cache.  Workers read the
rest themselves, hash them, prefilter, parse, store the facts in the cache
and send back facts alone, file by file: no file's bytes travel between
processes or stay in memory after its facts are extracted, but an overlay's
(the content given instead of the disk's, see kvmlint/files.py), which travels
with its task.  Facts are cached by content, so an overlay's are reused like
any other; the per-file stat index records only what was read from disk.

A worker that dies (a crash in the parser) or hangs is reported for the file
it was on, replaced, and the run goes on with the other files.
"""

from __future__ import annotations

import gc
import hashlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kvmlint.files import Overlay
from kvmlint.source.cache import NOT_PARSED, PARSED, FactsCache, FileRecord, is_settled, stat_signature
from kvmlint.source.discover import is_python_file, needs_parse, read_source, source_bytes
from kvmlint.source.facts import FileFacts

if TYPE_CHECKING:
    import multiprocessing

# Python files are parsed (libcst, slow) only when they contain one of these.
PYTHON_PREFILTER_LITERALS = (b"kernel_irqchip", b"kernel-irqchip")
# Work is handed out in chunks of about this many bytes (or files), biggest files first.
CHUNK_BYTES = 512 * 1024
CHUNK_FILES = 64
# Up to this many files whose stat changed are read and hashed in the main process.
FEW_FILES = 16
# A worker silent this long on one file is taken to hang: it is killed and the file reported.
FILE_TIMEOUT_SECONDS = 120.0


@dataclass
class ExtractionResult:
    facts: dict[str, FileFacts] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    bytes_read: int = 0
    files_read: int = 0
    from_cache: int = 0  # files whose facts or prefilter verdict came from the cache
    parsed: int = 0  # files parsed in this run


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def wants_parse(relpath: str, data: bytes) -> bool:
    """The cheap literal prefilter: only files that can hold a fact are parsed."""
    if is_python_file(relpath):
        return any(literal in data for literal in PYTHON_PREFILTER_LITERALS)
    return needs_parse(data)


def extract_file(relpath: str, data: bytes) -> FileFacts:
    if is_python_file(relpath):
        from kvmlint.source.pyextract import extract as extract_python

        return extract_python(relpath, data)
    from kvmlint.source.extract import extract

    return extract(relpath, data)


# One file's outcome, as a worker sends it:
# (relpath, FileRecord fields..., facts or None, bytes read, whether it was parsed here)
Outcome = tuple


def _probe(root: Path, cache: FactsCache | None, task: tuple) -> tuple[Outcome | None, bytes | None]:
    """Read one file: its outcome when no parse is needed (prefilter, or facts cached for its bytes),
    else its bytes (extract() hashes them: they are hashed here only to compare with the cache)."""
    relpath, signature, _, known_sha, given = task
    source = read_source(root / relpath) if given is None else source_bytes(given)
    if source.problem:
        return (relpath, None, None, source.problem, None, 0, False), None
    data = source.data
    if not wants_parse(relpath, data):
        return (relpath, signature, "", NOT_PARSED, None, len(data), False), None
    if cache is not None and known_sha is not None:
        sha256 = hashlib.sha256(data).hexdigest()
        facts = cache.load_facts(relpath, sha256) if sha256 == known_sha else None
        if facts is not None:
            return (relpath, signature, sha256, PARSED, facts, len(data), False), None
    return None, data


def _process(root: Path, cache: FactsCache | None, task: tuple, flush: Callable[[], None]) -> Outcome:
    outcome, data = _probe(root, cache, task)
    if outcome is not None:
        return outcome
    relpath, signature = task[0], task[1]
    flush()  # everything before this file is done: a crash from here on is this file's
    facts = extract_file(relpath, data)
    if cache is not None:
        cache.store_facts(relpath, facts.content_sha256, facts)
    return (relpath, signature, facts.content_sha256, PARSED, facts, len(data), True)


def _worker(connection, root: Path, cache: FactsCache | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C and ends us
    while True:
        chunk = connection.recv()
        if chunk is None:
            return
        finished: list[Outcome] = []

        def flush() -> None:
            if finished:
                connection.send(("done", list(finished)))
                finished.clear()

        for task in chunk:
            try:
                outcome = _process(root, cache, task, flush)
            except Exception as error:  # noqa: BLE001 -- one file's failure must not end the run
                outcome = (task[0], None, None, f"internal error while analysing ({type(error).__name__}: {error}); skipped",
                           None, 0, False)
            finished.append(outcome)
            if outcome[6]:
                flush()  # a parsed file's facts go back at once: nothing piles up in the worker
        flush()
        connection.send(("idle", None))


@dataclass
class _Worker:
    process: multiprocessing.Process
    connection: object
    chunk: list = field(default_factory=list)  # tasks sent and not yet reported
    heard_at: float = 0.0


def extract_all(
    root: Path,
    files: list[str] | tuple[str, ...],
    jobs: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cache: FactsCache | None = None,
    file_timeout: float = FILE_TIMEOUT_SECONDS,
    alongside: Callable[[], None] | None = None,
    overlay: Overlay | None = None,
) -> ExtractionResult:
    """Facts of every file that needs parsing (C sources and headers, Python tests), in path order.

    `alongside` starts other work of the main process (a thread): it is called
    once the workers have their first files, so that it does not slow the
    main process's own part down before they do.  A file in `overlay` is
    analysed with the content it gives there, or not at all where that is None.
    """
    result = ExtractionResult()
    index = cache.load_index() if cache is not None else {}
    new_index: dict[str, FileRecord] = {}
    recorded: dict[str, FileRecord] = {}  # records that workers or probes made in this run
    todo: list[tuple[int, tuple]] = []  # (size, task)
    taken_ns = time.time_ns()
    total = len(files)
    root_text = str(root)
    collecting = gc.isenabled()
    gc.disable()  # loading cached facts makes many objects and no garbage: the collector would only slow it
    try:
        for relpath in files:
            if overlay and relpath in overlay:
                _queue_given(relpath, overlay[relpath], todo, taken_ns)
            else:
                _take_or_queue(root_text, relpath, cache, index, new_index, todo, result, taken_ns)
    finally:
        if collecting:
            gc.enable()
    done = len(files) - len(todo)
    if on_progress and done:
        on_progress(done, total)

    def collect(outcomes: list[Outcome]) -> None:
        nonlocal done
        for relpath, signature, sha256, outcome, facts, size, parsed in outcomes:
            done += 1
            if sha256 is None:
                result.skipped.append((relpath, outcome))
                continue
            result.files_read += 1
            result.bytes_read += size
            result.parsed += parsed
            result.from_cache += outcome == PARSED and not parsed
            if facts is not None:
                result.facts[relpath] = facts
            if signature is not None:
                new_index[relpath] = recorded[relpath] = FileRecord(signature, sha256, outcome, is_settled(signature, taken_ns))
        if on_progress:
            on_progress(done, total)

    if cache is not None and len(todo) <= FEW_FILES:
        # A few touched files are most often unchanged inside: look here before starting a worker.
        probed = [(item, _probe(root, cache, item[1])[0]) for item in todo]
        collect([outcome for _, outcome in probed if outcome is not None])
        todo = [item for item, outcome in probed if outcome is None]
    if todo:
        todo.sort(key=lambda item: -item[0])  # big files first, so no worker is left with a long tail
        _run_workers(root, cache, _chunks(todo), jobs or default_jobs(), collect, result, file_timeout, alongside)
    elif alongside is not None:
        alongside()
    if cache is not None and any(index.get(path) != tuple(record) for path, record in recorded.items()):
        cache.store_index({**index, **new_index})
    result.facts = dict(sorted(result.facts.items()))
    return result


def _queue_given(relpath: str, data: bytes | None, todo, taken_ns) -> None:
    """Queue a file with the content an overlay gives: no stat signature, so the index records nothing
    of it, and its sha256 as the one known, so its facts come from the cache when they are there."""
    if data is not None:
        todo.append((len(data), (relpath, None, taken_ns, hashlib.sha256(data).hexdigest(), data)))


def _take_or_queue(root_text, relpath, cache, index, new_index, todo, result, taken_ns) -> None:
    """Take the file's facts from the cache when its stat vouches for them, else queue it for a worker."""
    try:
        st = os.stat(root_text + "/" + relpath)
    except OSError:
        todo.append((0, (relpath, None, taken_ns, None, None)))  # the worker reports why it cannot be read
        return
    signature = stat_signature(st)
    try:
        record = FileRecord(*index[relpath])
    except (KeyError, TypeError):  # not recorded, or not a record
        record = None
    if record is not None and record.trusted is True and record.signature == signature and isinstance(record.sha256, str):
        if _take_from_cache(cache, relpath, record, result):
            new_index[relpath] = record
            return
    todo.append((st.st_size, (relpath, signature, taken_ns, record.sha256 if record else None, None)))


def _take_from_cache(cache: FactsCache, relpath: str, record: FileRecord, result: ExtractionResult) -> bool:
    if record.outcome == PARSED:
        facts = cache.load_facts(relpath, record.sha256)
        if facts is None:
            return False
        result.facts[relpath] = facts
    elif record.outcome != NOT_PARSED:
        return False  # an unreadable or binary file: look again
    result.files_read += 1
    result.bytes_read += record.signature[0]
    result.from_cache += 1
    return True


def _chunks(todo: list[tuple[int, tuple]]) -> deque[list[tuple]]:
    """Python files in one chunk, handed out first: one worker loads libcst for them all."""
    python = [task for _, task in todo if is_python_file(task[0])]
    chunks: deque[list[tuple]] = deque([python] if python else [])
    current: list[tuple] = []
    size = 0
    for file_size, task in todo:
        if is_python_file(task[0]):
            continue
        if current and (size + file_size > CHUNK_BYTES or len(current) >= CHUNK_FILES):
            chunks.append(current)
            current, size = [], 0
        current.append(task)
        size += file_size
    if current:
        chunks.append(current)
    return chunks


def _run_workers(root, cache, chunks: deque, jobs: int, collect, result: ExtractionResult, file_timeout: float,
                 alongside: Callable[[], None] | None) -> None:
    # Imported here: a run whose files all come from the cache (the pre-commit hook) starts no worker.
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    if context.get_start_method() == "fork":
        import kvmlint.source.extract  # noqa: F401 -- imported once here, every forked worker has it for free
    workers: list[_Worker] = []

    def start() -> _Worker:
        ours, theirs = context.Pipe()
        process = context.Process(target=_worker, args=(theirs, root, cache), daemon=True)
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        workers.append(worker)
        return worker

    def hand_out(worker: _Worker) -> None:
        if chunks:
            chunk = chunks.popleft()
            worker.heard_at = time.monotonic()
            try:
                worker.connection.send(chunk)
            except OSError:
                chunks.appendleft(chunk)  # it died idle: its sentinel says so, and a new one takes over
                return
            worker.chunk = chunk

    def lost(worker: _Worker, why: str) -> None:
        """The worker died or hung on the first file it has not reported: skip that one, redo the rest."""
        workers.remove(worker)
        worker.connection.close()
        if worker.chunk:
            culprit, *rest = worker.chunk
            collect([(culprit[0], None, None, why, None, 0, False)])
            if rest:
                chunks.appendleft(rest)
        if chunks:
            hand_out(start())

    try:
        for _ in range(min(jobs, len(chunks))):
            hand_out(start())
        if alongside is not None:
            alongside()
        while workers:
            busy = [w for w in workers if w.chunk or chunks]
            if not busy:
                break
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
            for worker in list(busy):
                if worker not in workers:
                    continue
                if worker.connection in ready or worker.connection.poll():
                    try:
                        while worker.connection.poll():
                            kind, outcomes = worker.connection.recv()
                            worker.heard_at = time.monotonic()
                            if kind == "done":
                                reported = {o[0] for o in outcomes}
                                worker.chunk = [t for t in worker.chunk if t[0] not in reported]
                                collect(outcomes)
                            else:
                                worker.chunk = []
                                hand_out(worker)
                    except (EOFError, OSError):
                        pass  # it died while sending; the sentinel tells below
                if worker.process.sentinel in ready or not worker.process.is_alive():
                    worker.process.join()
                    code = worker.process.exitcode
                    lost(worker, f"the parser process died ({_describe_exit(code)}) on this file; skipped")
                elif worker.chunk and time.monotonic() - worker.heard_at > file_timeout:
                    worker.process.kill()
                    worker.process.join()
                    lost(worker, f"parsing took longer than {file_timeout:.0f} s; skipped")
    finally:
        # All idle after a normal end; after Ctrl-C or an error they may be mid-file: no waiting for that.
        for worker in workers:
            try:
                worker.connection.send(None)
            except OSError:
                pass
            if worker.chunk:
                worker.process.kill()
        for worker in workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"
