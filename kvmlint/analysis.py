"""Run the stages in order: source -> scope -> index -> model -> rules.

`Analysis` holds what the stages produced; later stages read it, none
reaches back up.  The scope resolver and the model are loaded only when a
rule first asks for them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import cached_property

from kvmlint.errors import UsageError
from kvmlint.findings import Finding
from kvmlint.index.symbols import Index
from kvmlint.rules import Selection, all_rules, resolve
from kvmlint.scope import Scope, ScopeResolver
from kvmlint.scope.cache import CachedScopes, ScopeCache
from kvmlint.source.cache import FactsCache
from kvmlint.source.discover import SourceSet
from kvmlint.source.facts import FileFacts
from kvmlint.source.workers import ExtractionResult, extract_all
from kvmlint.store import Store


PROXY = "kvm_irqchip_in_kernel"
# A run over this many files (a whole tree) will ask for scopes: read the build files while parsing.
EAGER_SCOPE_FILES = 200
# Where each layout keeps the KVM header: kvm.h (2012), include/sysemu/kvm.h, include/system/kvm.h.
KVM_HEADER_GLOBS = ("kvm.h", "include/*/kvm.h")


def kvm_headers(root) -> list:
    return [path for pattern in KVM_HEADER_GLOBS for path in sorted(root.glob(pattern)) if path.is_file()]


@dataclass
class Analysis:
    sources: SourceSet
    extraction: ExtractionResult
    index: Index
    era_override: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    cache: FactsCache | None = None
    scopes: CachedScopes | None = None  # the resolver's answers, from the cache when it has them

    @property
    def root(self):
        return self.sources.root

    @property
    def facts(self) -> dict[str, FileFacts]:
        return self.extraction.facts

    @cached_property
    def scope_resolver(self) -> ScopeResolver | CachedScopes:
        return self.scopes if self.scopes is not None else ScopeResolver(self.root)

    def scope(self, path: str) -> Scope:
        return self.scope_resolver.scope_of(path)

    @cached_property
    def era(self) -> str:
        from kvmlint.model import infer_era

        if self.era_override:
            return self.era_override
        symbols = self.index.defined_symbols() | set(self.index.assignments)
        if PROXY not in symbols:
            # Only some files were checked (a pre-commit run): read the tree's KVM header too.
            for facts in self._header_facts:
                symbols |= {d.name for d in facts.definitions} | {a.name for a in facts.assignments}
        return infer_era(symbols, self.root)

    @cached_property
    def _header_facts(self) -> list[FileFacts]:
        """The tree's KVM header, for a run that did not read it (from the cache when unchanged)."""
        headers = [header.relative_to(self.root).as_posix() for header in kvm_headers(self.root)]
        extraction = extract_all(self.root, headers, jobs=1, cache=self.cache, overlay=self.sources.overlay)
        return list(extraction.facts.values())

    @cached_property
    def kvm_layer(self) -> frozenset[str]:
        """The KVM header, core source and stub files (see kvm_layer.py)."""
        from kvmlint.index.kvm_layer import HEADER_MARKER, find_kvm_layer

        extra = []
        if HEADER_MARKER not in self.index.definitions:
            # Only some files were checked (a pre-commit run): read the tree's KVM header too.
            extra = self._header_facts
        return find_kvm_layer(self.facts.values(), lambda path: self.scope(path).common, extra)

    @cached_property
    def model(self):
        from kvmlint.model import load_model

        return load_model(self.era)


def analyse(
    sources: SourceSet,
    jobs: int | None = None,
    era: str | None = None,
    on_progress=None,
    cache: Store | None = None,
) -> Analysis:
    """Facts of every file (from the cache when unchanged), the index, and the scope of every file with facts.

    `cache` holds both stages' entries: the facts (source) and the scope answers.

    Without a stored scope reading, the build files are read in a thread while
    the workers parse, so the two overlap.
    """
    started = time.perf_counter()
    scopes = CachedScopes(sources.root, ScopeResolver, ScopeCache(cache) if cache is not None else None, sources.listing)
    facts_cache = FactsCache(cache) if cache is not None else None
    build_reading = None
    if scopes.stored is None and (cache is not None or len(sources.files) >= EAGER_SCOPE_FILES):
        build_reading = _BuildReading(scopes, sources.files)
    try:
        extraction = extract_all(sources.root, sources.files, jobs=jobs, on_progress=on_progress, cache=facts_cache,
                                 alongside=build_reading.start if build_reading is not None else None,
                                 overlay=sources.overlay)
    finally:
        if build_reading is not None and build_reading.is_alive():
            build_reading.join()
    extraction.skipped[:0] = sources.skipped
    parsed = time.perf_counter()
    index = Index.build(extraction.facts)
    indexed = time.perf_counter()
    if cache is not None:
        scopes.prepare(extraction.facts)
        scopes.save()
    return Analysis(
        sources=sources,
        extraction=extraction,
        index=index,
        era_override=era,
        timings={"read+parse": parsed - started, "index": indexed - parsed, "scope": time.perf_counter() - indexed},
        cache=facts_cache,
        scopes=scopes,
    )


class _BuildReading(threading.Thread):
    """Has the resolver read the build files (the cache records them): before any scope question needs it."""

    def __init__(self, scopes: CachedScopes, files: tuple[str, ...]):
        super().__init__(name="kvmlint-build-reading", daemon=True)
        self.scopes = scopes
        self.files = files

    def run(self) -> None:
        try:
            if self.files:
                self.scopes.resolver.rules  # noqa: B018 -- reads the configurations and build files
        except Exception:  # noqa: BLE001 -- the same question is asked again later, where errors are reported
            pass


# `--strict` reports each suppression comment that silences nothing as a
# finding of this pseudo-rule, so every output format carries it (ruff: RUF100).
UNUSED_SUPPRESSION_CODE = "KVM000"
UNUSED_SUPPRESSION_NAME = "unused-suppression"
UNUSED_SUPPRESSION_SUMMARY = "a `kvmlint: ignore` comment that silences nothing"
UNUSED_SUPPRESSION_DOCS = """## What it does
Reports a `kvmlint: ignore` or `kvmlint: ignore[CODE, ...]` comment (or one of
its codes) that silenced no finding in this run.  Only with `--strict`.

## Why is this bad?
A stale suppression hides the next real finding on that line.  Remove the
comment, or the codes in it that no longer apply.  Codes of rules that did not
run (`--select`/`--ignore`) are not reported."""


@dataclass
class CheckResult:
    findings: list[Finding]
    suppressed: list[Finding]
    unused_suppressions: list[Finding]  # KVM000 findings, reported under --strict


def run_rules(analysis: Analysis, selections: list[Selection]) -> CheckResult:
    started = time.perf_counter()
    findings = []
    for selection in selections:
        findings.extend(selection.rule.check(analysis, selection.symbols))
    findings = sorted(set(findings), key=Finding.sort_key)
    analysis.timings["rules"] = time.perf_counter() - started
    selected_codes = frozenset(selection.rule.code for selection in selections)
    return apply_suppressions(findings, analysis.facts, selected_codes)


def apply_suppressions(
    findings: list[Finding], facts: dict[str, FileFacts], selected_codes: frozenset[str] | None = None
) -> CheckResult:
    """`kvmlint: ignore[CODE]` on the flagged line or the line above silences a finding.

    A comment names rules by code or name; a bare `kvmlint: ignore` ("*")
    silences every rule.  Words no finding used come back as KVM000 findings.
    """
    kept, suppressed = [], []
    used: set[tuple[str, int, str]] = set()  # (path, comment line, word)
    for finding in findings:
        comments = facts[finding.path].suppressions if finding.path in facts else {}
        wanted = {"*", finding.code, finding.name}
        for line in (finding.line, finding.line - 1):
            words = {word for word in comments.get(line, ()) if _normalise(word) in wanted}
            if words:
                suppressed.append(finding)
                used.update((finding.path, line, word) for word in words)
                break
        else:
            kept.append(finding)
    unused = [
        _unused_suppression(path, line, words)
        for path, file_facts in facts.items()
        for line, all_words in sorted(file_facts.suppressions.items())
        if (words := _unused_words(path, line, all_words, file_facts.suppressions, used, selected_codes))
    ]
    return CheckResult(kept, suppressed, unused)


def _normalise(word: str) -> str:
    return word.upper() if word[:3].upper() == "KVM" and word[3:].isdigit() else word


def _unused_words(path, line, words, comments, used, selected_codes) -> list[str]:
    unused = []
    for word in sorted(words):
        # A comment whose code list wraps records its words on each of its
        # lines: a word used on a neighbouring line of the same comment counts.
        if any((path, at, word) in used and word in comments.get(at, ()) for at in (line - 1, line, line + 1)):
            continue
        if word in comments.get(line - 1, ()):
            continue  # the same comment, already reported on its first line
        if selected_codes is not None and not _ran(word, selected_codes):
            continue  # the rule it names did not run, so nobody can tell
        unused.append(word)
    return unused


def _ran(word: str, selected_codes: frozenset[str]) -> bool:
    if word == "*":
        return selected_codes >= {rule.code for rule in all_rules()}
    code = _rule_code(word)
    return code is None or code in selected_codes  # an unknown code is always stale


def _rule_code(word: str) -> str | None:
    if word == "*":
        return None
    try:
        return resolve(_normalise(word)).rule.code
    except UsageError:
        return None


def _unused_suppression(path: str, line: int, words: list[str]) -> Finding:
    if words == ["*"]:
        what = "`kvmlint: ignore`"
    else:
        unknown = [word for word in words if word != "*" and _rule_code(word) is None]
        what = f"`kvmlint: ignore[{', '.join(words)}]`" + (
            f" ({', '.join(unknown)}: no such rule)" if unknown else ""
        )
    return Finding(
        UNUSED_SUPPRESSION_CODE, UNUSED_SUPPRESSION_NAME, path, line, 1, line, 1,
        f"{what} silences nothing here: remove it",
    )
