"""A baseline: the findings a tree had when CI started gating, which `check --baseline` no longer reports.

Each entry is keyed on the finding's fingerprint (`Report.fingerprints`, the
one SARIF and GitLab Code Quality carry): it hashes the rule, file, function,
symbol and the text of the line, not the line number, so edits elsewhere in a
file leave the entry matching.  The file is JSON with a version, its entries
sorted and one key to a line, so a change to it reads as a short diff.  It is
read as any file of the tree is: a regular file, not a symlink, bounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from kvmlint.errors import UsageError
from kvmlint.files import UnreadableFile, read_regular_file

VERSION = 1
MAX_BASELINE_BYTES = 64 * 1024 * 1024
ENTRY_KEYS = ("path", "code", "name", "function", "symbol", "fingerprint")
FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Entry:
    path: str
    code: str
    name: str
    function: str | None
    symbol: str | None
    fingerprint: str


def render(report) -> str:
    """The baseline of every finding of `report` (suppressed ones need none)."""
    fingerprints = report.fingerprints
    entries = sorted(
        (Entry(f.path, f.code, f.name, f.function, f.symbol, fingerprints[f]) for f in report.findings),
        key=lambda entry: (entry.path, entry.code, entry.function or "", entry.symbol or "", entry.fingerprint),
    )
    document = {"version": VERSION, "findings": [{key: getattr(entry, key) for key in ENTRY_KEYS} for entry in entries]}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def read(path: Path, name: str) -> dict[str, Entry]:
    """The entries of the baseline at `path` by fingerprint; `name` is how messages call the file."""
    try:
        data = read_regular_file(path, MAX_BASELINE_BYTES, follow_symlinks=False)
    except UnreadableFile as problem:
        reason = str(problem).removesuffix("; skipped")
        if path.is_symlink():
            reason = "is a symlink; kvmlint reads a baseline only as a regular file"
        elif not path.exists():
            reason = "does not exist (write one with `kvmlint check --write-baseline FILE`)"
        raise UsageError(f"baseline {name}: {reason}") from None
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise UsageError(f"baseline {name}: not valid JSON ({str(error).splitlines()[0][:200]})") from None
    if not isinstance(document, dict) or document.get("version") != VERSION or not isinstance(document.get("findings"), list):
        raise UsageError(f"baseline {name}: not a kvmlint baseline of version {VERSION} "
                         "(an object with \"version\" and a list \"findings\")")
    entries = {}
    for number, item in enumerate(document["findings"], 1):
        entry = _entry(item)
        if entry is None:
            raise UsageError(f"baseline {name}: entry {number} is not a finding "
                             f"(an object of strings {', '.join(ENTRY_KEYS)}; function and symbol may be null)")
        entries[entry.fingerprint] = entry
    return entries


def _entry(item) -> Entry | None:
    if not isinstance(item, dict) or set(item) != set(ENTRY_KEYS):
        return None
    optional = ("function", "symbol")
    if not all(isinstance(item[key], str) or (key in optional and item[key] is None) for key in ENTRY_KEYS):
        return None
    if not FINGERPRINT.fullmatch(item["fingerprint"]):
        return None
    return Entry(**item)
