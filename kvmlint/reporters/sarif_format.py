"""SARIF 2.1.0, for GitHub code scanning and other SARIF viewers.

Paths are relative to `%SRCROOT%` (the checkout root); columns are counted in
Unicode code points (the run's `columnKind`), where kvmlint counts bytes.

A result's fix is what `kvmlint fix FILE:LINE` writes for it: one
artifactChange per file, its replacements' `deletedRegion`s in the file as
checked (SARIF 3.57.3).  A file the fix creates has one insertion at line 1,
column 1.  A file that is not UTF-8 text (invalid bytes, or a byte order
mark, which text regions do not count) gets binary replacements instead:
`byteOffset`/`byteLength` and base64 content.
"""

from __future__ import annotations

import base64
import codecs
import json
import re
from urllib.parse import quote

from kvmlint import __version__, rules
from kvmlint.reporters.fix_edits import edit_places
from kvmlint.rules import docs as rule_docs
from kvmlint.reporters.text_format import notes_of

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SOURCE_ROOT = "%SRCROOT%"
FINGERPRINT_KEY = "kvmlint/v1"
MAX_SNIPPET_BYTES = 4096


def render(report) -> str:
    descriptors = _rule_descriptors(report)
    rule_index = {descriptor["id"]: index for index, descriptor in enumerate(descriptors)}
    results = [_result(report, finding, rule_index) for finding in report.findings]
    if report.show_suppressed:
        results.extend(_result(report, finding, rule_index, suppressed=True) for finding in report.suppressed)
    document = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kvmlint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": descriptors,
                    }
                },
                "originalUriBaseIds": {SOURCE_ROOT: {"uri": report.root.as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "defaultEncoding": "utf-8",
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _rule_descriptors(report) -> list[dict]:
    from kvmlint.rules.suppressions import UNUSED_SUPPRESSION_CODE

    # KVM000, the pseudo-rule of --strict, is described only in a run that reports it, and first.
    described = sorted((entry for entry in rule_docs.documented()
                        if entry.code != UNUSED_SUPPRESSION_CODE
                        or any(finding.code == UNUSED_SUPPRESSION_CODE for finding in report.findings)),
                       key=lambda entry: entry.code != UNUSED_SUPPRESSION_CODE)
    return [
        {
            "id": entry.code,
            "name": entry.name,
            "shortDescription": {"text": entry.summary},
            "fullDescription": {"text": _section(entry.docs, "What it does") or entry.summary},
            **({"helpUri": rule_docs.help_uri(entry)} if rule_docs.help_uri(entry) else {}),
            "help": {"text": entry.docs, "markdown": entry.docs},
            "defaultConfiguration": {"level": "warning"},
            "properties": {"fixable": entry.fixable},
        }
        for entry in described
    ]


def _section(docs: str, title: str) -> str:
    """The text under `## title` in a rule's docs, on one line."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", docs, re.MULTILINE | re.DOTALL)
    return " ".join(match.group(1).split()) if match else ""


def _result(report, finding, rule_index: dict[str, int], suppressed: bool = False) -> dict:
    region = _region(report, finding)
    result = {
        "ruleId": finding.code,
        "ruleIndex": rule_index[finding.code],
        "level": "note" if finding.confidence == "low" else "warning",
        "message": _message(finding),
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(finding.path), "uriBaseId": SOURCE_ROOT},
                    "region": region,
                },
                **(
                    {"logicalLocations": [{"name": finding.function, "kind": "function"}]}
                    if finding.function
                    else {}
                ),
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: report.fingerprints[finding]},
        "properties": {
            "name": finding.name,
            "confidence": finding.confidence,
            **({"arch": finding.arch} if finding.arch else {}),
            **({"evidence": list(finding.evidence)} if finding.evidence else {}),
            **({"details": list(finding.details)} if finding.details else {}),
            **({"verdicts": dict(finding.verdicts)} if finding.verdicts else {}),
        },
    }
    fix = report.fixes.get(finding)
    if fix is not None:
        result["fixes"] = [
            {
                "description": {"text": fix.description},
                "artifactChanges": [_artifact_change(changed) for changed in fix.files],
                "properties": {"applicability": fix.applicability},
            }
        ]
    if suppressed:
        result["suppressions"] = [{"kind": "inSource"}]
    return result


def _uri(path: str) -> str:
    """A root-relative path as a URI reference: bytes outside RFC 3986's path characters percent-encoded."""
    return quote(path.encode("utf-8", "surrogateescape"), safe="/-._~!$&'()*+,;=:@")


def _message(finding) -> dict:
    """The short message; viewers that render markdown also get the notes as a list."""
    notes = notes_of(finding)
    if not notes:
        return {"text": finding.message}
    return {"text": finding.message, "markdown": finding.message + "\n\n" + "".join(f"- {note}\n" for note in notes)}


def _region(report, finding) -> dict:
    region = {
        "startLine": finding.line,
        "startColumn": report.code_point_column(finding.path, finding.line, finding.column),
        "endLine": finding.end_line,
        "endColumn": report.code_point_column(finding.path, finding.end_line, finding.end_column),
    }
    line = report.source_line(finding.path, finding.line)
    if line is not None and len(line) <= MAX_SNIPPET_BYTES:  # a minified line repeated per result would not fit in memory
        region["snippet"] = {"text": line.decode("utf-8", "replace")}
    return region


def _artifact_change(changed) -> dict:
    return {
        "artifactLocation": {"uri": _uri(changed.path), "uriBaseId": SOURCE_ROOT},
        "replacements": _text_replacements(changed) or _binary_replacements(changed),
    }


def _text_replacements(changed) -> list[dict] | None:
    """Line and code point regions of the file as checked; None when it is not UTF-8 text."""
    data = changed.original or b""
    if data.startswith(codecs.BOM_UTF8):
        return None
    try:
        data.decode("utf-8")
        replacements = []
        for edit, ((start_line, start_of_line), (end_line, end_of_line)) in zip(changed.edits, edit_places(changed)):
            region = {
                "startLine": start_line,
                "startColumn": len(data[start_of_line : edit.start].decode("utf-8")) + 1,
                "endLine": end_line,
                "endColumn": len(data[end_of_line : edit.end].decode("utf-8")) + 1,
            }
            text = edit.replacement.decode("utf-8")
            replacements.append({"deletedRegion": region, **({"insertedContent": {"text": text}} if text else {})})
    except UnicodeDecodeError:  # an offset inside a character, or bytes that are not UTF-8
        return None
    return replacements


def _binary_replacements(changed) -> list[dict]:
    return [
        {
            "deletedRegion": {"byteOffset": edit.start, "byteLength": edit.end - edit.start},
            **({"insertedContent": {"binary": base64.b64encode(edit.replacement).decode("ascii")}} if edit.replacement else {}),
        }
        for edit in changed.edits
    ]
