"""Suppression comments: `kvmlint: ignore[CODE]` silences a finding, and `--strict` reports one that silences nothing.

The stale ones are findings of the pseudo-rule KVM000, described here for
every output format that lists rules (SARIF); it is not in the registry, as
it checks no code.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmlint.errors import UsageError
from kvmlint.findings import Finding
from kvmlint.rules import all_rules, resolve
from kvmlint.source.facts import FileFacts


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
