"""A baseline that CI keeps: `check --write-baseline FILE` records today's findings, `check --baseline FILE`
(or `baseline = "FILE"` in the config) reports only new ones, through line moves, and counts stale entries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets" / "qemu-2012"
# A second proxy use in common code: a finding the baseline does not hold.
NEW_PROXY_USE = """
static bool qemu_cpu_is_idle(CPUArchState *env)
{
    return kvm_irqchip_in_kernel();
}
"""


def kvmlint(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmlint", "check", "--no-cache", *args], cwd=tree,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def tree(tmp_path) -> Path:
    shutil.copytree(SAMPLE, tmp_path / "qemu")
    return tmp_path / "qemu"


@pytest.fixture
def baselined(tree) -> Path:
    """The sample tree with a baseline of its findings in `kvmlint-baseline.json`."""
    written = kvmlint(tree, "--write-baseline", "kvmlint-baseline.json")
    assert written.returncode == 0, written.stderr
    assert written.stdout == ""
    assert "kvmlint: baseline kvmlint-baseline.json: wrote 11 findings" in written.stderr
    return tree


def test_the_baseline_is_sorted_json_keyed_on_fingerprints_without_line_numbers(baselined):
    document = json.loads((baselined / "kvmlint-baseline.json").read_text())
    assert document["version"] == 1
    entries = document["findings"]
    assert len(entries) == 11
    assert entries == sorted(entries, key=lambda e: (e["path"], e["code"], e["function"] or "", e["symbol"] or "",
                                                     e["fingerprint"]))
    assert set(entries[0]) == {"path", "code", "name", "function", "symbol", "fingerprint"}
    sarif = json.loads(kvmlint(baselined, "--format", "sarif").stdout)
    assert {e["fingerprint"] for e in entries} == {
        result["partialFingerprints"]["kvmlint/v1"] for result in sarif["runs"][0]["results"]}
    again = kvmlint(baselined, "--write-baseline", "again.json")
    assert (baselined / "again.json").read_bytes() == (baselined / "kvmlint-baseline.json").read_bytes()
    assert again.returncode == 0


def test_a_check_with_the_baseline_passes_and_says_how_many_it_held_back(baselined):
    done = kvmlint(baselined, "--baseline", "kvmlint-baseline.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "kvmlint: baseline kvmlint-baseline.json: 11 findings baselined (not reported), no stale entries" in done.stderr


def test_only_a_new_finding_is_reported_and_fails_the_check(baselined):
    with open(baselined / "cpus.c", "a") as source:
        source.write(NEW_PROXY_USE)
    done = kvmlint(baselined, "--baseline", "kvmlint-baseline.json", "--format", "concise")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cpus.c:") and "KVM001" in lines[0]
    assert int(lines[0].split(":")[1]) > 40  # the appended function, not cpu_thread_is_idle's line 24
    assert "11 findings baselined" in done.stderr
    gitlab = json.loads(kvmlint(baselined, "--baseline", "kvmlint-baseline.json", "--format", "gitlab").stdout)
    assert [issue["location"]["lines"]["begin"] for issue in gitlab] == [int(lines[0].split(":")[1])]


def test_findings_whose_lines_moved_stay_baselined(baselined):
    for name in ("cpus.c", "kvm-all.c", "hw/virtio-pci.c"):
        source = baselined / name
        source.write_text("\n\n\n/* a comment added above */\n" + source.read_text())
    done = kvmlint(baselined, "--baseline", "kvmlint-baseline.json")
    assert done.returncode == 0, done.stdout
    assert "11 findings baselined" in done.stderr


def test_entries_that_match_no_finding_are_counted_as_stale(baselined):
    source = baselined / "cpus.c"
    source.write_text(source.read_text().replace("|| kvm_irqchip_in_kernel()", "|| kvm_async_interrupts_enabled()"))
    done = kvmlint(baselined, "--baseline", "kvmlint-baseline.json")
    assert done.returncode == 0, done.stdout
    assert ("kvmlint: baseline kvmlint-baseline.json: 10 findings baselined (not reported), "
            "1 entry no longer matches a finding (stale: rewrite it with --write-baseline)") in done.stderr
    # Entries of files or rules the check does not look at are not stale: they were not looked for.
    narrowed = kvmlint(baselined, "--baseline", "kvmlint-baseline.json", "--select", "KVM003", "kvm-all.c")
    assert narrowed.returncode == 0
    assert "1 finding baselined (not reported), no stale entries" in narrowed.stderr


def test_the_config_names_the_baseline(baselined):
    (baselined / "kvmlint.toml").write_text('baseline = "kvmlint-baseline.json"\n')
    with open(baselined / "cpus.c", "a") as source:
        source.write(NEW_PROXY_USE)
    done = kvmlint(baselined, "--format", "concise")
    assert done.returncode == 1
    assert len(done.stdout.splitlines()) == 1
    assert "kvmlint: baseline kvmlint-baseline.json: 11 findings baselined" in done.stderr
    # Writing a baseline records every finding, not only those the config's baseline lacks.
    rewritten = kvmlint(baselined, "--write-baseline", "kvmlint-baseline.json")
    assert "wrote 12 findings" in rewritten.stderr
    assert kvmlint(baselined).returncode == 0


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"version": 2, "findings": []}', "not a kvmlint baseline of version 1"),
    ('[]', "not a kvmlint baseline of version 1"),
    ('{"version": 1, "findings": [{"path": "cpus.c"}]}', "entry 1 is not a finding"),
    ("[" * 100000 + "]" * 100000, "not"),
], ids=["not-json", "version-2", "a-list", "entry-without-fields", "nested-100000-deep"])
def test_a_malformed_baseline_is_one_line(tree, content, message):
    (tree / "baseline.json").write_text(content)
    done = kvmlint(tree, "--baseline", "baseline.json")
    assert done.returncode == 2
    assert done.stderr.startswith("kvmlint: baseline baseline.json: ") and message in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_a_missing_symlinked_special_or_oversized_baseline_is_one_line(tree, tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text('{"version": 1, "findings": []}')
    os.symlink(outside, tree / "linked.json")
    os.mkfifo(tree / "fifo.json")
    with open(tree / "huge.json", "wb") as huge:
        huge.truncate(65 * 1024 * 1024)
    for name, message in [("missing.json", "does not exist (write one with `kvmlint check --write-baseline FILE`)"),
                          ("linked.json", "is a symlink"), ("fifo.json", "not a regular file"),
                          ("huge.json", "larger than 64 MiB")]:
        done = kvmlint(tree, "--baseline", name)
        assert done.returncode == 2, name
        assert done.stderr.startswith(f"kvmlint: baseline {name}: {message}"), done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr


def test_a_config_baseline_outside_the_tree_is_refused(tree, tmp_path):
    (tmp_path / "elsewhere.json").write_text('{"version": 1, "findings": []}')
    (tree / "kvmlint.toml").write_text('baseline = "../elsewhere.json"\n')
    done = kvmlint(tree)
    assert done.returncode == 2
    assert done.stderr == "kvmlint: kvmlint.toml: 'baseline' must name a file inside the tree\n"


def test_writing_a_baseline_does_not_go_with_a_change_or_through_a_symlink(tree, tmp_path):
    done = kvmlint(tree, "--write-baseline", "b.json", "--diff-base", "HEAD")
    assert done.returncode == 2 and "--write-baseline records a whole check" in done.stderr
    os.symlink(tmp_path / "target.json", tree / "link.json")
    done = kvmlint(tree, "--write-baseline", "link.json")
    assert done.returncode == 2 and "is a symlink" in done.stderr
    assert not (tmp_path / "target.json").exists()
