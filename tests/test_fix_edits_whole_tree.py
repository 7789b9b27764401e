"""check's JSON and SARIF fixes come from the whole-tree analysis check already makes, and are what
`kvmlint fix FILE:LINE` writes: for a check of a folder with files excluded, for a named file the
checkout's listing leaves out, and for --staged.  A check of content that is not the disk's carries
no fix, since `fix` writes the disk.

The JSON applier here is ruff's reading of `fix.edits` (row, 1-based byte column, end exclusive,
applied per file from the last edit, a missing file read as empty), written from the format alone.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

import kvmlint.analysis
from conftest import lay_out
from kvmlint.cli import cli

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Q. Developer", "GIT_AUTHOR_EMAIL": "dev@example.org",
    "GIT_COMMITTER_NAME": "Q. Developer", "GIT_COMMITTER_EMAIL": "dev@example.org",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}
# A copy of cpus.c's idle decision in a file of its own: KVM001, fixed by introducing a predicate.
EXTRA = """
static bool cpu_extra_is_idle(CPUArchState *env)
{
    if (!env->halted || qemu_cpu_has_work(env) || kvm_irqchip_in_kernel()) {
        return false;
    }
    return true;
}
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)


def runner() -> CliRunner:
    """A runner whose stdout is the command's alone: click before 8.2 mixes stderr in unless told not to."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click 8.2 and later: stderr is apart already
        return CliRunner()


def kvmlint_run(*args: str, cwd: Path | None = None) -> tuple[int, str]:
    previous = os.getcwd()
    os.chdir(cwd or previous)
    try:
        result = runner().invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(previous)
    return result.exit_code, result.stdout


def check_json(*args: str, cwd: Path | None = None) -> list[dict]:
    code, output = kvmlint_run("check", "--no-cache", "--format", "json", *args, cwd=cwd)
    assert code in (0, 1), output
    return json.loads(output)["findings"]


def apply_json_edits(root: Path, edits: list[dict]) -> None:
    by_path: dict[str, list[dict]] = {}
    for edit in edits:
        by_path.setdefault(edit["path"], []).append(edit)
    for path, file_edits in by_path.items():
        target = root / path
        data = target.read_bytes() if target.exists() else b""
        starts = [0] + [index + 1 for index, byte in enumerate(data) if byte == ord("\n")]

        def offset(place: dict) -> int:
            return starts[place["row"] - 1] + place["column"] - 1

        for edit in sorted(file_edits, key=lambda e: offset(e["location"]), reverse=True):
            content = edit["content"].encode("utf-8", "surrogateescape")
            data = data[: offset(edit["location"])] + content + data[offset(edit["end_location"]) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def files_of(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not {".git", ".kvmlint_cache"} & set(path.relative_to(root).parts)
    }


def test_check_plans_its_fixes_on_the_one_analysis_it_makes(tmp_path, monkeypatch):
    """A check of one folder with a file excluded still analyses the tree once, and its fixes are those
    of the whole checkout's findings at the same places."""
    root = lay_out(tmp_path / "qemu", "qemu-2012")
    whole = {(f["path"], f["line"]): f["fix"] for f in check_json(str(root))}
    analysed = []
    real_analyse = kvmlint.analysis.analyse

    def counting(sources, **options):
        analysed.append(sources.root)
        return real_analyse(sources, **options)

    monkeypatch.setattr(kvmlint.analysis, "analyse", counting)
    part = check_json("--exclude", "kvm-all.c", str(root / "hw"))
    assert len(analysed) == 1
    assert any(f["fix"] and f["fix"]["edits"] for f in part)
    for finding in part:
        in_whole = whole[("hw/" + finding["path"], finding["line"])]
        edits = [{**e, "path": os.path.normpath(os.path.join("hw", e["path"]))} for e in (finding["fix"] or {}).get("edits", [])]
        assert edits == (in_whole or {}).get("edits", []), finding


def test_a_named_file_the_checkouts_listing_leaves_out_carries_what_fix_file_line_writes(tmp_path):
    """git ignores cpus-extra.c, so a check of the tree does not read it; `check cpus-extra.c` does,
    and so does `fix cpus-extra.c:LINE`: its JSON edits write exactly what that fix writes."""
    root = lay_out(tmp_path / "qemu", "qemu-2012")
    (root / "cpus-extra.c").write_text((root / "cpus.c").read_text().split("\nstatic bool", 1)[0] + EXTRA)
    (root / ".gitignore").write_text("cpus-extra.c\n")
    git(root, "init", "-q", "-b", "master")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    assert not any(f["path"] == "cpus-extra.c" for f in check_json(str(root)))
    [finding] = [f for f in check_json(str(root / "cpus-extra.c")) if f["code"] == "KVM001"]
    assert finding["fix"] is not None
    before = files_of(root)
    code, output = kvmlint_run("fix", f"{root / 'cpus-extra.c'}:{finding['line']}", "--select", "KVM001")
    assert code == 0, output
    written = files_of(root)
    for path, data in before.items():
        (root / path).write_bytes(data)
    apply_json_edits(root, finding["fix"]["edits"])
    assert files_of(root) == written != before


def test_staged_carries_fixes_when_the_index_is_the_work_tree_and_none_when_it_differs(tmp_path):
    """pre-commit stashes what is not staged, so the index is the work tree and `fix` writes what was
    checked.  Where they differ, check judges the index's content, which `fix` does not write."""
    root = lay_out(tmp_path / "qemu", "qemu-2012")
    git(root, "init", "-q", "-b", "master")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    cpus = root / "cpus.c"
    cpus.write_text(cpus.read_text() + EXTRA)
    git(root, "add", "cpus.c")
    whole = {(f["path"], f["line"]): f["fix"] for f in check_json(str(root))}
    staged = check_json("--staged", "cpus.c", cwd=root)
    assert staged and all(f["fix"] is not None and f["fix"] == whole[(f["path"], f["line"])] for f in staged)

    cpus.write_text(cpus.read_text() + "\n/* not staged */\n")
    staged = check_json("--staged", "cpus.c", cwd=root)
    assert staged and all(f["fix"] is None for f in staged)
