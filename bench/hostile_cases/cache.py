"""The tree ships a `.kvmlint_cache/`: entries that hide findings, links out of the tree, files that never end.

The planted entries are made with kvmlint's own cache code, run as the tree's
author would run it: in a process with the author's home, so with whatever the
author's kvmlint can compute.  Where a case needs the names the victim's
kvmlint will look up, it asks the victim's own kvmlint (the strongest attacker:
one who knows every name).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from hostile_cases import REPOSITORY, crashed, fixture_tree, kvmlint

# The author's kvmlint writes, with its own cache code, for the tree at argv[1]:
# facts of an empty file stored as cpus.c's (whose real bytes have a KVM001
# finding), and an index that sends the victim's run to those facts.
PLANT_HIDING_ENTRIES = """
import hashlib, sys
from pathlib import Path
from kvmlint.source.cache import PARSED, FactsCache
from kvmlint.source.workers import extract_file
from kvmlint.store import Store

tree = Path(sys.argv[1])
cache = FactsCache(Store.for_tree(tree))
sha256 = hashlib.sha256((tree / "cpus.c").read_bytes()).hexdigest()
cache.store_facts("cpus.c", sha256, extract_file("cpus.c", b""))
cache.store.write(cache.index_name, cache.facts_key, {"cpus.c": ((0, 0, 0, 0), sha256, PARSED, False)})
"""

# The names the victim's kvmlint looks up for the tree at argv[1], as JSON.
ENTRY_NAMES = """
import hashlib, json, sys
from pathlib import Path
from kvmlint.scope.cache import ScopeCache
from kvmlint.source.cache import FactsCache
from kvmlint.store import Store

tree = Path(sys.argv[1])
store = Store(tree / ".kvmlint_cache", tree, own=True)
cache = FactsCache(store)
sha256 = hashlib.sha256((tree / "cpus.c").read_bytes()).hexdigest()
print(json.dumps({"index": cache.index_name, "scope": ScopeCache(store).scope_name, "facts": cache.facts_name("cpus.c", sha256)}))
"""


def _python(folder: Path, home: Path, code: str, *args: str) -> str:
    home.mkdir(parents=True, exist_ok=True)
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
                   "XDG_CACHE_HOME": str(home / ".cache"), "PYTHONPATH": str(REPOSITORY)}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environment,
                          cwd=folder, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    return done.stdout


def _findings(result: subprocess.CompletedProcess) -> list[dict] | None:
    try:
        return json.loads(result.stdout)["findings"]
    except (ValueError, KeyError):
        return None


def _cpus_reported(folder: Path, tree: Path, *extra: str) -> str | None:
    result = kvmlint(folder, "check", "--format", "json", *extra, str(tree))
    findings = _findings(result)
    if crashed(result) or findings is None:
        return crashed(result) or "no JSON report"
    if not any(f["path"] == "cpus.c" and f["code"] == "KVM001" for f in findings):
        return "the planted cache hid cpus.c's KVM001 finding"
    return None


def case_planted_entries_hide_a_finding(folder: Path) -> str | None:
    """A `.kvmlint_cache/` built by the author's kvmlint says cpus.c has no facts."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    _python(folder, folder / "author", PLANT_HIDING_ENTRIES, str(tree))
    return _cpus_reported(folder, tree)


def case_planted_entries_hide_a_finding_on_a_warm_run(folder: Path) -> str | None:
    """The victim ran kvmlint once; the author then plants hiding facts over the victim's own entry."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    first = kvmlint(folder, "check", "--format", "json", str(tree))
    if crashed(first):
        return crashed(first)
    _python(folder, folder / "author", PLANT_HIDING_ENTRIES, str(tree))
    return _cpus_reported(folder, tree)


def case_cache_folder_is_a_symlink_out_of_the_tree(folder: Path) -> str | None:
    """`.kvmlint_cache -> ../elsewhere`: kvmlint must write nothing there, and say why it runs without a cache."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    (tree / ".kvmlint_cache").symlink_to(elsewhere)
    result = kvmlint(folder, "check", "--format", "json", str(tree))
    if crashed(result):
        return crashed(result)
    if any(elsewhere.iterdir()):
        return f"wrote outside the tree: {sorted(p.name for p in elsewhere.iterdir())[:3]}"
    if b".kvmlint_cache" not in result.stderr or b"warning" not in result.stderr:
        return "ran without the cache without saying so"
    return None


def _plant_under_entry_names(folder: Path, tree: Path, plant) -> str | None:
    (tree / ".kvmlint_cache").mkdir()
    names = json.loads(_python(folder, folder / "home", ENTRY_NAMES, str(tree)))
    for name in names.values():
        plant(tree / ".kvmlint_cache" / name)
    return _cpus_reported(folder, tree)


def case_entries_are_fifos(folder: Path) -> str | None:
    """Every entry the victim's kvmlint reads is a FIFO: opening one for reading waits forever."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    return _plant_under_entry_names(folder, tree, os.mkfifo)


def case_entries_link_to_an_endless_device(folder: Path) -> str | None:
    """Every entry is a symlink to /dev/zero: a read without a bound never ends."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    return _plant_under_entry_names(folder, tree, lambda path: path.symlink_to("/dev/zero"))


def case_entries_are_huge_sparse_files(folder: Path) -> str | None:
    """Every entry is a 4 GiB sparse file: more than the process may hold."""
    tree = fixture_tree("qemu-2012", folder / "tree")

    def sparse(path: Path) -> None:
        with open(path, "wb") as stream:
            stream.truncate(4 << 30)
    return _plant_under_entry_names(folder, tree, sparse)


def case_stale_sweep_keeps_what_it_did_not_write(folder: Path) -> str | None:
    """Old files and symlinks named like entries and temporaries: the sweep of stale entries must leave them."""
    tree = fixture_tree("qemu-2012", folder / "tree")
    planted_folder = tree / ".kvmlint_cache"
    planted_folder.mkdir()
    victim = folder / "victim.txt"
    victim.write_text("the user's file\n")
    planted = [planted_folder / name for name in (".tmp-planted", "facts-" + "0" * 40, "index-" + "0" * 32)]
    for path in planted:
        path.write_text("shipped with the tree\n")
    links = [planted_folder / ".tmp-link", planted_folder / ("scope-" + "1" * 32)]
    for link in links:
        link.symlink_to(victim)
    old = time.time() - 30 * 24 * 3600
    for path in [*planted, *links, victim]:
        os.utime(path, (old, old), follow_symlinks=False)
    result = kvmlint(folder, "check", "--format", "json", str(tree))
    if crashed(result):
        return crashed(result)
    gone = [path.name for path in [*planted, *links] if not os.path.lexists(path)]
    if not victim.exists():
        return "deleted the user's file outside the tree"
    if gone:
        return f"deleted files it did not write: {', '.join(gone)}"
    return None


CASES = [
    case_planted_entries_hide_a_finding,
    case_planted_entries_hide_a_finding_on_a_warm_run,
    case_cache_folder_is_a_symlink_out_of_the_tree,
    case_entries_are_fifos,
    case_entries_link_to_an_endless_device,
    case_entries_are_huge_sparse_files,
    case_stale_sweep_keeps_what_it_did_not_write,
]
