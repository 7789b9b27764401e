"""The cache: what a second run reuses, what a change invalidates, and what it never trusts.

Every run here is a real `kvmlint check` process on a copy of a fixture tree,
with `--verbose`, whose last lines say how many files were parsed and how many
came from the cache.
"""

from __future__ import annotations

import dataclasses
import faulthandler
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmlint import store as store_module
from kvmlint.scope.cache import ScopeCache
from kvmlint.source import cache as cache_module
from kvmlint.source.cache import FactsCache
from kvmlint.store import Store
from kvmlint.source.workers import extract_all

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"
# A developer who ran ./run.sh on the bundled sample has a cache beside it; each test starts without one.
NO_CACHE = shutil.ignore_patterns(".kvmlint_cache")
COUNTS = re.compile(r"(\d+) parsed, (\d+) from the cache")


def check(tree: Path, cache_dir: Path | None, *extra: str) -> tuple[int, list[dict], int, int, str]:
    """Exit status, findings, files parsed, files from the cache, stderr."""
    environment = {k: v for k, v in os.environ.items() if k != "KVMLINT_CACHE_DIR"}
    if cache_dir is not None:
        environment["KVMLINT_CACHE_DIR"] = str(cache_dir)
    completed = subprocess.run(
        [sys.executable, "-m", "kvmlint", "check", "--format", "json", "--verbose", *extra, str(tree)],
        capture_output=True, text=True, env=environment, timeout=120,
    )
    assert completed.returncode in (0, 1), completed.stderr
    assert "Traceback" not in completed.stderr and "internal error" not in completed.stderr
    parsed, cached = map(int, COUNTS.search(completed.stderr).groups())
    return completed.returncode, json.loads(completed.stdout)["findings"], parsed, cached, completed.stderr


@pytest.fixture(params=["qemu-2012", "qemu-current"])
def tree(request, tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURES / request.param, tmp_path / request.param, ignore=NO_CACHE))


@pytest.fixture
def tree_2012(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "qemu-2012", ignore=NO_CACHE))


def settle(tree: Path) -> None:
    """Date every file and folder back a minute: a stat taken within seconds of a change is not trusted."""
    past = time.time() - 60
    for path in [*tree.rglob("*"), tree]:
        os.utime(path, (past, past), follow_symlinks=False)


def test_results_are_identical_with_and_without_the_cache(tree, tmp_path):
    settle(tree)
    status, uncached, parsed, _, _ = check(tree, None, "--no-cache")
    assert status == 1 and uncached and parsed > 0
    assert not (tree / ".kvmlint_cache").exists()  # --no-cache writes nothing

    cold = check(tree, tmp_path / "cache")
    warm = check(tree, tmp_path / "cache")
    assert cold[1] == warm[1] == uncached
    assert cold[2] == parsed  # the first run parses what --no-cache parses
    assert warm[2] == 0 and warm[3] > 0  # the second parses nothing


def test_the_default_cache_is_at_the_tree_root_and_ignored_by_git(tree_2012):
    settle(tree_2012)
    check(tree_2012, None)
    folder = tree_2012 / ".kvmlint_cache"
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert check(tree_2012, None)[2] == 0


def test_an_edited_file_is_parsed_again_alone_and_its_new_finding_appears(tree_2012, tmp_path):
    settle(tree_2012)
    _, before, _, _, _ = check(tree_2012, tmp_path / "cache")
    cpus = tree_2012 / "cpus.c"
    cpus.write_text(cpus.read_text() + "\nint extra_proxy(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n")
    _, after, parsed, _, _ = check(tree_2012, tmp_path / "cache")
    assert parsed == 1
    assert len(after) == len(before) + 1
    assert [f for f in after if f not in before][0]["function"] == "extra_proxy"


def test_a_touched_file_with_the_same_bytes_is_not_parsed_again(tree_2012, tmp_path):
    settle(tree_2012)
    _, before, _, _, _ = check(tree_2012, tmp_path / "cache")
    os.utime(tree_2012 / "kvm-all.c")  # new mtime, same content
    _, after, parsed, _, _ = check(tree_2012, tmp_path / "cache")
    assert parsed == 0 and after == before


def test_a_build_file_change_changes_the_scope_and_reparses_nothing(tree_2012, tmp_path):
    settle(tree_2012)
    _, before, _, _, _ = check(tree_2012, tmp_path / "cache")
    assert not [f for f in before if f["path"] == "hw/pc.c"]  # x86 code: its proxies are legitimate
    i386 = tree_2012 / "hw" / "i386" / "Makefile.objs"
    i386.write_text(i386.read_text().replace("mc146818rtc.o pc.o", "mc146818rtc.o"))
    (tree_2012 / "hw" / "Makefile.objs").write_text((tree_2012 / "hw" / "Makefile.objs").read_text() + "hw-obj-y += pc.o\n")
    _, after, parsed, _, _ = check(tree_2012, tmp_path / "cache")
    assert parsed == 0
    assert [f for f in after if f["path"] == "hw/pc.c"]  # now built for every target: common code
    assert check(tree_2012, tmp_path / "cache", "--no-cache")[1] == after


def test_a_source_edit_or_a_new_source_file_keeps_the_scope_reading(tree_2012, tmp_path):
    settle(tree_2012)
    cache_dir = tmp_path / "cache"
    check(tree_2012, cache_dir)
    append_proxy = "\nint extra_proxy(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n"
    (tree_2012 / "cpus.c").write_text((tree_2012 / "cpus.c").read_text() + append_proxy)
    (tree_2012 / "hw" / "extra.c").write_text(append_proxy)
    assert ScopeCache(Store(cache_dir, tree_2012)).load_scopes() is not None  # no build file changed: nothing to read again
    _, findings, parsed, _, _ = check(tree_2012, cache_dir)
    assert parsed == 2
    assert findings == check(tree_2012, None, "--no-cache")[1]
    assert {"cpus.c", "hw/extra.c"} <= {f["path"] for f in findings if f["function"] == "extra_proxy"}


def test_a_model_change_changes_the_findings_at_once_and_parses_nothing(tree_2012, tmp_path):
    """The model is read on every run; the facts do not depend on it."""
    package = Path(shutil.copytree(Path(cache_module.__file__).parents[1], tmp_path / "copy" / "kvmlint",
                                   ignore=shutil.ignore_patterns("__pycache__")))
    settle(tree_2012)
    cache_dir = tmp_path / "cache"

    def run(*extra: str):
        environment = {**os.environ, "PYTHONPATH": str(package.parent), "KVMLINT_CACHE_DIR": str(cache_dir)}
        completed = subprocess.run([sys.executable, "-m", "kvmlint", "check", "--format", "json", "--verbose", *extra,
                                    str(tree_2012)], capture_output=True, text=True, env=environment, timeout=120,
                                   cwd=tmp_path)  # `-m` puts the working directory first on the path
        assert "Traceback" not in completed.stderr
        return json.loads(completed.stdout)["findings"], int(COUNTS.search(completed.stderr).group(1))

    before, _ = run()
    evidence = package / "model" / "data" / "evidence.toml"
    irqfd = 'predicate = { "2012" = "kvm_irqfds_enabled", current = "kvm_irqfds_enabled" }'
    assert irqfd in evidence.read_text()
    evidence.write_text(evidence.read_text().replace(irqfd, irqfd.replace('"2012" = "kvm_irqfds_enabled"',
                                                                          '"2012" = "kvm_gsi_routing_enabled"')))
    after, parsed = run()
    assert parsed == 0
    assert after == run("--no-cache")[0] != before
    assert {f["replacement"] for f in after if f["function"] == "kvm_irqchip_assign_irqfd"} == {"kvm_gsi_routing_enabled()"}


def test_a_new_kvmlint_version_parses_everything_again(tree_2012, tmp_path, monkeypatch):
    settle(tree_2012)
    files = sorted(p.relative_to(tree_2012).as_posix() for p in tree_2012.rglob("*.[ch]"))
    (tmp_path / "cache").mkdir()
    first = extract_all(tree_2012, files, jobs=1, cache=FactsCache(Store(tmp_path / "cache", tree_2012)))
    again = extract_all(tree_2012, files, jobs=1, cache=FactsCache(Store(tmp_path / "cache", tree_2012)))
    monkeypatch.setattr(cache_module, "__version__", "999.0")
    upgraded = extract_all(tree_2012, files, jobs=1, cache=FactsCache(Store(tmp_path / "cache", tree_2012)))
    assert first.parsed > 0 and again.parsed == 0
    assert upgraded.parsed == first.parsed
    assert same_facts(upgraded.facts, first.facts) and same_facts(again.facts, first.facts)


def same_facts(one: dict, other: dict) -> bool:
    """Equal facts, whatever the order of the records of each kind and of the members of each set."""
    def plain(value):
        if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
            return [plain(item) for item in value]
        if isinstance(value, (set, frozenset)):
            return sorted(map(repr, value))
        if isinstance(value, dict):
            return sorted((repr(key), plain(item)) for key, item in value.items())
        if dataclasses.is_dataclass(value):
            return [(f.name, plain(getattr(value, f.name))) for f in dataclasses.fields(value)]
        return value

    def normalised(facts):
        return {path: [(f.name, sorted(map(repr, plain(getattr(record, f.name))))
                        if isinstance(getattr(record, f.name), list) else repr(plain(getattr(record, f.name))))
                       for f in dataclasses.fields(record)]
                for path, record in facts.items()}
    return normalised(one) == normalised(other)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "foreign"])
def test_a_damaged_entry_is_rebuilt_never_trusted(tree_2012, tmp_path, damage):
    settle(tree_2012)
    cache_dir = tmp_path / "cache"
    _, before, parsed_first, _, _ = check(tree_2012, cache_dir)
    entries = sorted(cache_dir.glob("facts-*")) + sorted(cache_dir.glob("index-*")) + sorted(cache_dir.glob("scope-*"))
    for entry in entries:
        blob = entry.read_bytes()
        if damage == "truncate":
            blob = blob[: len(blob) // 2]
        elif damage == "flip":
            blob = blob[:-10] + bytes([blob[-10] ^ 0xFF]) + blob[-9:]
        elif damage == "garbage":
            blob = os.urandom(len(blob))
        elif damage == "empty":
            blob = b""
        else:  # written by another kvmlint: its key differs
            blob = blob.replace(blob[len(store_module.MAGIC):len(store_module.MAGIC) + 64], b"0" * 64, 1)
        entry.write_bytes(blob)
    _, after, parsed, _, _ = check(tree_2012, cache_dir)
    assert after == before
    assert parsed == parsed_first  # nothing damaged was used
    assert check(tree_2012, cache_dir)[2] == 0  # and it was rebuilt


def test_an_entry_that_would_run_code_is_refused(tree_2012, tmp_path):
    """A tree may ship a crafted cache: entries load only kvmlint's own record types."""
    settle(tree_2012)
    cache = FactsCache(Store(tmp_path / "cache", tree_2012))
    cache.store.directory.mkdir()
    marker = tmp_path / "ran"
    cache.store.write(cache.index_name, cache.facts_key, _RunsCode(str(marker)))
    assert cache.load_index() == {}
    assert not marker.exists()


class _RunsCode:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_concurrent_runs_leave_a_valid_cache(tree_2012, tmp_path):
    settle(tree_2012)
    cache_dir = tmp_path / "cache"
    expected = check(tree_2012, None, "--no-cache")[1]
    environment = {**os.environ, "KVMLINT_CACHE_DIR": str(cache_dir)}
    command = [sys.executable, "-m", "kvmlint", "check", "--format", "json", str(tree_2012)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment) for _ in range(4)]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 1, err
        assert json.loads(out)["findings"] == expected
    assert not list(cache_dir.glob(".tmp-*"))  # every entry renamed into place
    _, findings, parsed, _, _ = check(tree_2012, cache_dir)
    assert findings == expected and parsed == 0


def test_a_worker_that_crashes_costs_its_file_only(tree_2012, monkeypatch):
    from kvmlint.source import extract as extract_module

    real = extract_module.extract

    def crash_on_msi(path, data):
        if path == "hw/msi.c":
            faulthandler.disable()  # pytest's crash report would only clutter the output
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(path, data)

    monkeypatch.setattr(extract_module, "extract", crash_on_msi)  # the forked workers inherit it
    files = sorted(p.relative_to(tree_2012).as_posix() for p in tree_2012.rglob("*.[ch]"))
    result = extract_all(tree_2012, files, jobs=2)
    assert result.skipped == [("hw/msi.c", "the parser process died (SIGSEGV) on this file; skipped")]
    assert "hw/msi.c" not in result.facts
    assert set(result.facts) == {f for f in files if f != "hw/msi.c" and b"kvm" in (tree_2012 / f).read_bytes().lower()}


def test_a_worker_that_hangs_is_stopped_and_its_file_reported(tree_2012, monkeypatch):
    from kvmlint.source import extract as extract_module

    real = extract_module.extract

    def hang_on_msix(path, data):
        if path == "hw/msix.c":
            time.sleep(3600)
        return real(path, data)

    monkeypatch.setattr(extract_module, "extract", hang_on_msix)
    files = sorted(p.relative_to(tree_2012).as_posix() for p in tree_2012.rglob("*.[ch]"))
    started = time.monotonic()
    result = extract_all(tree_2012, files, jobs=1, file_timeout=2)
    assert time.monotonic() - started < 60
    assert result.skipped == [("hw/msix.c", "parsing took longer than 2 s; skipped")]
    assert "kvm-all.c" in result.facts and "hw/msix.c" not in result.facts


def test_the_cli_reports_a_crashed_file_and_still_reports_the_others(tree_2012):
    script = (
        "import os, signal, sys\n"
        "from kvmlint import cli\nfrom kvmlint.source import extract\n"
        "real = extract.extract\n"
        "def crash(path, data):\n"
        "    if path == 'hw/msi.c':\n"
        "        os.kill(os.getpid(), signal.SIGSEGV)\n"
        "    return real(path, data)\n"
        "extract.extract = crash\n"
        "sys.argv = ['kvmlint', 'check', '--no-cache', '--format', 'json', sys.argv[1]]\n"
        "cli.main()\n"
    )
    completed = subprocess.run([sys.executable, "-c", script, str(tree_2012)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    assert "kvmlint: warning: hw/msi.c: the parser process died (SIGSEGV) on this file; skipped" in completed.stderr
    paths = {finding["path"] for finding in json.loads(completed.stdout)["findings"]}
    assert "cpus.c" in paths and "hw/msi.c" not in paths


def test_old_entries_are_removed_from_the_trees_own_cache(tree_2012):
    settle(tree_2012)
    check(tree_2012, None)
    folder = tree_2012 / ".kvmlint_cache"
    old = time.time() - 2 * store_module.STALE_SECONDS
    cache = FactsCache(Store(folder, tree_2012, own=True))  # what kvmlint itself left: the sweep removes nothing else
    leftovers = [folder / cache.store._temporary_name(), folder / ("facts-" + "0" * 40), folder / ("index-" + "0" * 32)]
    leftovers[0].write_bytes(b"half an entry of a killed run")
    for path in leftovers:
        if path != leftovers[0]:
            cache.store.write(path.name, cache.facts_key, {})  # of an older file version
        os.utime(path, (old, old))
    entries = {path.name for path in folder.iterdir()}
    os.utime(tree_2012 / "cpus.c")  # the next run has something to record
    check(tree_2012, None)
    assert not any(path.exists() for path in leftovers)
    assert entries - {path.name for path in folder.iterdir()} == {path.name for path in leftovers}


def test_an_index_of_wrong_records_is_a_miss_not_a_crash(tree_2012, tmp_path):
    settle(tree_2012)
    cache_dir = tmp_path / "cache"
    _, before, parsed_first, _, _ = check(tree_2012, cache_dir)
    cache = FactsCache(Store(cache_dir, tree_2012))
    index = cache.load_index()
    wrong = {path: (record[0], 42, "parsed", True) if n % 3 == 0 else ("short",) if n % 3 == 1 else record
             for n, (path, record) in enumerate(index.items())}
    cache.store.write(cache.index_name, cache.facts_key, wrong)
    _, after, parsed, _, _ = check(tree_2012, cache_dir)
    assert after == before
    assert 0 < parsed < parsed_first  # the files whose records were wrong, and only those
    assert check(tree_2012, cache_dir)[2] == 0
