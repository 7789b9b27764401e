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

from kvmlint.findings import Finding
from kvmlint.index import Index
from kvmlint.rules import Selection
from kvmlint.rules.suppressions import CheckResult, apply_suppressions
from kvmlint.scope import Scope, ScopeResolver
from kvmlint.scope.cache import CachedScopes, ScopeCache
from kvmlint.source import ExtractionResult, FileFacts, SourceSet, extract_all
from kvmlint.source.cache import FactsCache
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


def run_rules(analysis: Analysis, selections: list[Selection]) -> CheckResult:
    started = time.perf_counter()
    findings = []
    for selection in selections:
        findings.extend(selection.rule.check(analysis, selection.symbols))
    findings = sorted(set(findings), key=Finding.sort_key)
    analysis.timings["rules"] = time.perf_counter() - started
    selected_codes = frozenset(selection.rule.code for selection in selections)
    return apply_suppressions(findings, analysis.facts, selected_codes)


def fixes_for_check(analysis: Analysis, findings: list[Finding], unsafe: bool) -> dict:
    """The fix of each of `check`'s findings that has one, as `kvmlint fix FILE:LINE` writes it.

    Both commands analyse the whole checkout, so the fixes are planned on the
    analysis check already made.  A tree analysed with other content than the
    disk's (--staged where the index differs, --patch, --diff-base A..B) has
    none: `fix` writes the work tree, and its files hold other bytes.
    """
    from kvmlint.validation.finding_fixes import finding_fixes

    if analysis.sources.overlay:
        return {}
    return finding_fixes(analysis, findings, unsafe)
