"""A cache that comes with the tree is not believed: only entries this user's kvmlint sealed are used,
and the cache folder never sends kvmlint's reads or writes elsewhere.

Every kvmlint run here is a `kvmlint check` process under CPU-time and memory
limits, with the tree's own `.kvmlint_cache/` (no $KVMLINT_CACHE_DIR) and its
own cache home for the key, so "the victim" and "the tree's author" are two
homes on one machine, running the same kvmlint.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kvmlint import store as store_module

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"
COUNTS = re.compile(r"(\d+) parsed, (\d+) from the cache")

# What the tree's author runs, with kvmlint's own cache code, before shipping the tree at argv[1]:
# facts of an empty file filed as cpus.c's (whose real bytes hold a KVM001 finding), and an index
# that sends the next run to them.
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


def limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def environment(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment with its own cache home (the key's), and the tree's own cache folder."""
    chosen = {k: v for k, v in os.environ.items() if k not in ("KVMLINT_CACHE_DIR", "XDG_CACHE_HOME")}
    return {**chosen, "XDG_CACHE_HOME": str(home), **extra}


def check(tree: Path, home: Path, *extra: str, **env: str) -> tuple[list[dict], int, int, str]:
    """Findings, files parsed, files from the cache, stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "kvmlint", "check", "--format", "json", "--verbose", *extra, str(tree)],
        capture_output=True, text=True, env=environment(home, **env), timeout=120, preexec_fn=limit,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr[-2000:]
    parsed, cached = map(int, COUNTS.search(done.stderr).groups())
    return json.loads(done.stdout)["findings"], parsed, cached, done.stderr


def plant(tree: Path, author_home: Path) -> None:
    done = subprocess.run([sys.executable, "-c", PLANT_HIDING_ENTRIES, str(tree)], capture_output=True, text=True,
                          env=environment(author_home), timeout=60)
    assert done.returncode == 0, done.stderr


def cpus_proxy(findings: list[dict]) -> bool:
    return any(f["path"] == "cpus.c" and f["code"] == "KVM001" for f in findings)


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("kvmlint: warning:")]


@pytest.fixture
def tree(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "tree",
                                ignore=shutil.ignore_patterns(".kvmlint_cache")))


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "victim-cache-home"


def entry_names(tree: Path, home: Path) -> dict[str, str]:
    """The names the victim's kvmlint looks up (an attacker who knows them all)."""
    code = ("import hashlib, json, sys; from pathlib import Path; from kvmlint.source.cache import FactsCache; "
            "from kvmlint.scope.cache import ScopeCache; from kvmlint.store import Store; "
            "tree = Path(sys.argv[1]); store = Store(tree / '.kvmlint_cache', tree, own=True); "
            "cache = FactsCache(store); sha = hashlib.sha256((tree / 'cpus.c').read_bytes()).hexdigest(); "
            "print(json.dumps({'index': cache.index_name, 'scope': ScopeCache(store).scope_name, "
            "'facts': cache.facts_name('cpus.c', sha)}))")
    done = subprocess.run([sys.executable, "-c", code, str(tree)], capture_output=True, text=True,
                          env=environment(home), timeout=60, check=True)
    return json.loads(done.stdout)


def test_a_shipped_cache_made_by_kvmlints_own_code_does_not_hide_a_finding(tree, tmp_path, home):
    assert cpus_proxy(check(tree, home, "--no-cache")[0])
    plant(tree, tmp_path / "author-cache-home")
    findings, parsed, _, _ = check(tree, home)
    assert cpus_proxy(findings)
    assert parsed > 0  # nothing of the author's was used


def test_a_foreign_entry_over_the_users_own_is_rebuilt_and_overwritten(tree, tmp_path, home):
    check(tree, home)
    plant(tree, tmp_path / "author-cache-home")
    findings, parsed, _, _ = check(tree, home)
    assert cpus_proxy(findings) and parsed >= 1
    assert check(tree, home)[1] == 0  # the victim's own entries are back, and used


def test_the_key_is_made_once_private_to_the_user(tree, home):
    check(tree, home)
    key = home / "kvmlint" / store_module.KEY_FILE_NAME
    st = os.lstat(key)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_size == store_module.KEY_BYTES
    assert stat.S_IMODE(os.stat(home / "kvmlint").st_mode) & 0o077 == 0
    before = key.read_bytes()
    assert check(tree, home)[1] == 0 and key.read_bytes() == before
    assert [p.name for p in (home / "kvmlint").iterdir()] == [key.name]  # no temporary left


@pytest.mark.parametrize("spoil", ["readable", "symlink", "short"])
def test_a_key_that_is_not_the_users_alone_is_refused_with_a_warning(tree, tmp_path, home, spoil):
    check(tree, home)
    key = home / "kvmlint" / store_module.KEY_FILE_NAME
    if spoil == "readable":
        key.chmod(0o644)
    elif spoil == "symlink":
        other = tmp_path / "someone-elses-key"
        other.write_bytes(b"k" * store_module.KEY_BYTES)
        other.chmod(0o600)
        key.unlink()
        key.symlink_to(other)
    else:
        key.write_bytes(b"short")
    findings, parsed, cached, stderr = check(tree, home)
    assert cached == 0 and parsed > 0 and cpus_proxy(findings)
    assert [w for w in warnings(stderr) if "key" in w] == warnings(stderr)[:1]
    assert str(key) in warnings(stderr)[0]


def test_without_a_place_for_the_key_the_run_goes_without_cache_and_says_so_once(tree, tmp_path):
    not_a_folder = tmp_path / "cache-home-is-a-file"
    not_a_folder.write_text("")
    findings, parsed, cached, stderr = check(tree, not_a_folder)
    assert cpus_proxy(findings) and parsed > 0 and cached == 0
    assert len([w for w in warnings(stderr) if "running without the cache" in w]) == 1
    assert not (tree / ".kvmlint_cache").exists()


@pytest.mark.parametrize("configured", [False, True])
def test_a_symlinked_cache_folder_is_refused_and_nothing_is_written_where_it_points(tree, tmp_path, home, configured):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "configured-cache" if configured else tree / ".kvmlint_cache"
    link.symlink_to(elsewhere)
    extra = {"KVMLINT_CACHE_DIR": str(link)} if configured else {}
    findings, _, cached, stderr = check(tree, home, **extra)
    assert cpus_proxy(findings) and cached == 0
    assert list(elsewhere.iterdir()) == []
    assert [w for w in warnings(stderr) if str(link) in w and "symlink" in w and "without the cache" in w]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder of another user's takes root")
def test_a_cache_folder_of_another_user_is_refused(tree, home):
    folder = tree / ".kvmlint_cache"
    folder.mkdir(mode=0o777)
    os.chown(folder, 65534, 65534)
    findings, _, cached, stderr = check(tree, home)
    assert cpus_proxy(findings) and cached == 0
    assert list(folder.iterdir()) == []
    assert [w for w in warnings(stderr) if "not this user's folder" in w]


@pytest.mark.parametrize("kind", ["fifo", "endless-device", "huge", "folder"])
def test_an_entry_that_is_not_a_small_regular_file_is_a_miss(tree, home, kind):
    """Under the very names the victim's run reads: a FIFO would block, /dev/zero or a 4 GiB file
    would exhaust memory, a folder cannot be replaced."""
    (tree / ".kvmlint_cache").mkdir()
    for name in entry_names(tree, home).values():
        path = tree / ".kvmlint_cache" / name
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "endless-device":
            path.symlink_to("/dev/zero")
        elif kind == "huge":
            with open(path, "wb") as stream:
                stream.truncate(4 << 30)
        else:
            path.mkdir()
    started = time.monotonic()
    findings, parsed, _, _ = check(tree, home)
    assert cpus_proxy(findings) and parsed > 0
    assert time.monotonic() - started < 60


def test_a_planted_symlink_named_like_an_entry_is_replaced_not_written_through(tree, tmp_path, home):
    (tree / ".kvmlint_cache").mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    names = entry_names(tree, home)
    for name in names.values():
        (tree / ".kvmlint_cache" / name).symlink_to(victim)
    check(tree, home)
    assert victim.read_text() == "the user's file\n"
    assert not any((tree / ".kvmlint_cache" / name).is_symlink() for name in names.values())
    assert check(tree, home)[1] == 0


def test_the_sweep_of_stale_entries_removes_only_what_kvmlint_wrote(tree, tmp_path, home):
    folder = tree / ".kvmlint_cache"
    folder.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file\n")
    planted = [folder / name for name in (".tmp-planted", "facts-" + "0" * 40, "index-" + "0" * 32)]
    for path in planted:
        path.write_text("shipped with the tree\n")
    links = [folder / ".tmp-link", folder / ("scope-" + "1" * 32)]
    for link in links:
        link.symlink_to(victim)
    old = time.time() - 2 * store_module.STALE_SECONDS
    for path in [*planted, *links, victim]:
        os.utime(path, (old, old), follow_symlinks=False)
    check(tree, home)
    assert all(os.path.lexists(path) for path in [*planted, *links])
    assert victim.read_text() == "the user's file\n"


def test_an_empty_folder_gets_no_cache_folder(tmp_path, home):
    empty = tmp_path / "empty"
    empty.mkdir()
    findings, parsed, _, _ = check(empty, home)
    assert findings == [] and parsed == 0
    assert list(empty.iterdir()) == []
