"""`fix --format-patch`, `fix --commit` and `fix --diff` as a QEMU developer uses them: on a git
checkout, applied with `git am -3`, read in `git log`, checked by checkpatch's rules."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_codemods import FIXTURES
from test_workflow import GIT_ENV, git

CHECKPATCH_LINE_LIMIT = 80  # checkpatch warns past 80 columns in code
COMMIT_WIDTH = 72


def kvmlint(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kvmlint", *args], capture_output=True, text=True, env={**os.environ, **GIT_ENV}
    )


@pytest.fixture
def checkout(tmp_path) -> Path:
    """The 2012-layout fixture as a git checkout with one commit."""
    tree = Path(shutil.copytree(FIXTURES / "qemu-2012", tmp_path / "qemu"))
    git(tree, "init", "-q", "-b", "master")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "Initial import")
    return tree


def series(tree: Path, out: Path, *args: str) -> list[Path]:
    done = kvmlint("fix", "--format-patch", str(out), *args, str(tree))
    assert done.returncode in (0, 1), done.stderr
    return sorted(out.glob("*.patch"))


def message_of(patch: Path) -> str:
    return patch.read_text().split("\n\n", 1)[1].split("\n---\n", 1)[0]


def added_lines(patch: Path) -> list[str]:
    return [line[1:] for line in patch.read_text().splitlines() if line.startswith("+") and not line.startswith("+++")]


def test_series_applies_with_git_am_3_onto_a_moved_base(checkout, tmp_path):
    patches = [p for p in series(checkout, tmp_path / "out") if not p.name.startswith("0000")]
    assert len(patches) >= 5
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(checkout), str(clone))
    # Upstream moved on: a line inside the first patch's context changed.
    cpus = clone / "cpus.c"
    text = cpus.read_text()
    context = "    if (env->stopped || !runstate_is_running()) {\n"
    assert context in text
    cpus.write_text(text.replace(context, "    if (!runstate_is_running() || env->stopped) {\n", 1))
    git(clone, "commit", "-q", "-am", "cpus: Comment the stopped check")
    plain = subprocess.run(["git", "apply", "--check", str(patches[0])], cwd=clone, capture_output=True, text=True)
    assert plain.returncode != 0  # the context moved: only the three-way fallback applies it
    git(clone, "am", "-3", *map(str, patches))
    log = git(clone, "log", "--format=%s", f"-n{len(patches)}").splitlines()
    assert len(log) == len(patches) and not git(clone, "status", "--porcelain")


def test_patches_carry_real_blob_ids_and_function_context(checkout, tmp_path):
    first = series(checkout, tmp_path / "out")[1]
    text = first.read_text()
    blob = git(checkout, "hash-object", "cpus.c").strip()
    assert re.search(rf"^index {blob[:12]}\.\.[0-9a-f]{{12}} 100644$", text, re.MULTILINE)
    assert re.search(r"^@@ -\d+,\d+ \+\d+,\d+ @@ static bool cpu_thread_is_idle\(", text, re.MULTILINE)
    shown = kvmlint("fix", "--diff", str(checkout)).stdout
    assert f"index {blob[:12]}.." in shown and "@@ static bool cpu_thread_is_idle(" in shown
    new_header = shown.split("b/target-i386/kvm_i386.h\n", 1)[1]
    assert new_header.startswith("new file mode 100644\nindex 000000000000..")


def test_a_tree_with_uncommitted_edits_is_refused(checkout, tmp_path):
    (checkout / "hw/pc.c").write_text((checkout / "hw/pc.c").read_text() + "/* local edit */\n")
    for option in (["--format-patch", str(tmp_path / "out")], ["--commit"]):
        done = kvmlint("fix", *option, str(checkout))
        assert done.returncode == 2 and "uncommitted changes in hw/pc.c" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()
    assert git(checkout, "status", "--porcelain") == " M hw/pc.c\n"


def test_a_series_of_two_or_more_has_a_cover_letter_with_verdicts(checkout, tmp_path):
    patches = series(checkout, tmp_path / "out")
    cover = patches[0]
    assert cover.name == "0000-cover-letter.patch"
    text = cover.read_text()
    count = len(patches) - 1
    assert f"Subject: [PATCH 0/{count}] " in text
    for patch in patches[1:]:
        title = re.search(r"^Subject: \[PATCH \d+/\d+\] (.*)$", patch.read_text(), re.MULTILINE).group(1)
        assert f"  {title}\n" in text  # the shortlog
    assert "- x86: nothing changes." in text and "- ARM: with kernel_irqchip=" in text
    assert f"base-commit: {git(checkout, 'rev-parse', 'HEAD').strip()}" in text
    single = series(checkout, tmp_path / "one", "--select", "KVM003")
    assert [p.name for p in single] == ["0001-kvm-Rename-kvm_irqchip_set_irq-to-kvm_set_irq.patch"]


def test_messages_read_like_a_qemu_developer_wrote_them(checkout, tmp_path):
    patches = series(checkout, tmp_path / "out")[1:]
    for patch in patches:
        message = message_of(patch)
        lines = message.splitlines()
        assert max(map(len, lines)) <= COMMIT_WIDTH, patch.name
        for paragraph in message.split("\n\n"):
            last = paragraph.splitlines()[-1]
            assert len(paragraph.splitlines()) == 1 or len(last.split()) > 1, f"orphan word in {patch.name}: {last!r}"
            assert not any(line.startswith("  ") and not line.lstrip().startswith("-") for line in paragraph.splitlines()[1:]) or paragraph.startswith("- ")
        for wrong in ("a x86", "a ARM", "model's vocabulary", "Model check", "configurations as needed"):
            assert wrong not in message, f"{wrong!r} in {patch.name}"
        assert "Signed-off-by" not in patch.read_text()
    moved = next(p for p in patches if "Move-kvm_allows_irq0_override" in p.name)
    text = message_of(moved)
    assert "an x86-specific helper" in text and "hw/pc_piix.c and target-i386/kvm.c now include kvm_i386.h" in text.replace("\n", " ")


def test_generated_code_keeps_checkpatch_rules(checkout, tmp_path):
    for patch in series(checkout, tmp_path / "out")[1:]:
        for line in added_lines(patch):
            assert len(line.expandtabs()) <= CHECKPATCH_LINE_LIMIT, f"{patch.name}: {line!r}"
            assert line == line.rstrip(), f"{patch.name}: trailing whitespace"
            assert "\t" not in line
    header = (tmp_path / "out").glob("*Move-kvm_allows_irq0_override*.patch")
    text = next(header).read_text().split("b/target-i386/kvm_i386.h\n", 1)[1]
    guard = re.search(r"^\+#ifndef (\w+)$", text, re.MULTILINE).group(1)
    # The neighbour kvm_ppc.h uses the reserved __KVM_PPC_H__: never copied.
    assert guard == "QEMU_KVM_I386_H" and f"+#define {guard}\n" in text and f"+#endif /* {guard} */" in text


def test_subject_prefix_follows_the_tree_history(checkout, tmp_path):
    source = checkout / "target-i386/kvm.c"
    for number in range(3):
        source.write_text(source.read_text() + f"/* tweak {number} */\n")
        git(checkout, "commit", "-q", "-am", f"target-i386/kvm: Tweak {number}")
    git(checkout, "commit", "-q", "--allow-empty", "-m", "kvm: Unrelated")
    moved = next(p for p in series(checkout, tmp_path / "out") if "irq0" in p.name)
    assert "] target-i386/kvm: Move kvm_allows_irq0_override() to target-i386\n" in moved.read_text()
    renamed = next(p for p in (tmp_path / "out").glob("*Rename*"))
    assert "] kvm: Rename kvm_irqchip_set_irq() to kvm_set_irq()\n" in renamed.read_text()  # path rules


def test_fix_selects_like_check_and_by_location(checkout):
    done = kvmlint("fix", "--select", "KVM003", str(checkout))
    assert done.returncode in (0, 1), done.stderr
    changed = sorted(git(checkout, "diff", "--name-only").split())
    assert changed == ["kvm-all.c", "kvm.h"]
    assert [line for line in done.stdout.splitlines() if line.startswith("wrote ")] == [f"wrote {p}" for p in changed]
    git(checkout, "checkout", "--", ".")

    line = next(n for n, text in enumerate((checkout / "cpus.c").read_text().splitlines(), 1) if "kvm_irqchip_in_kernel" in text)
    done = kvmlint("fix", f"{checkout}/cpus.c:{line}")
    assert done.returncode == 0, done.stderr
    assert "kvm_async_interrupts_enabled()" in (checkout / "cpus.c").read_text()
    assert (checkout / "hw/virtio-pci.c").read_text().count("kvm_irqchip_in_kernel()") == 2  # other sites untouched
    assert not (checkout / "target-i386/kvm_i386.h").exists()
    nothing = kvmlint("fix", f"{checkout}/cpus.c:1")
    assert nothing.returncode == 2 and "cpus.c:1: no finding there" in nothing.stderr

    ignored = kvmlint("fix", "--diff", "--ignore", "KVM001,KVM002", str(checkout)).stdout
    assert "kvm_set_irq" in ignored and "kvm_irqfds_enabled" not in ignored and "kvm_i386.h" not in ignored


@pytest.mark.parametrize("signoff", [False, True])
def test_fix_commit_makes_one_commit_per_change_set(checkout, tmp_path, signoff):
    patches = series(checkout, tmp_path / "out")[1:]
    done = kvmlint("fix", "--commit", *(["-s"] if signoff else []), str(checkout))
    assert done.returncode in (0, 1), done.stderr
    log = git(checkout, "log", "--format=%B%x00", f"-n{len(patches)}").split("\0")
    messages = [m.strip("\n") for m in reversed(log) if m.strip()]
    assert len(messages) == len(patches)
    for message, patch in zip(messages, patches):
        subject = re.search(r"^Subject: \[PATCH \d+/\d+\] (.*)$", patch.read_text(), re.MULTILINE).group(1)
        body = message_of(patch).rstrip("\n")
        expected = f"{subject}\n\n{body}"
        if signoff:
            expected += "\n\nSigned-off-by: Q. Developer <dev@example.org>"
        assert message == expected
    assert git(checkout, "status", "--porcelain") == ""
    # Each commit is its patch (git may align a hunk differently: compare the lines).
    for number, patch in enumerate(patches):
        shown = git(checkout, "show", "--format=", f"HEAD~{len(patches) - 1 - number}")
        assert sorted(_hunk_lines(shown)) == sorted(_hunk_lines(patch.read_text().split("\n---\n", 1)[1].split("\n-- \n", 1)[0]))


def _hunk_lines(diff: str) -> list[str]:
    return [line for line in diff.splitlines() if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]


def test_a_new_file_declares_its_licence_the_way_its_neighbours_do(checkout, tmp_path):
    source = checkout / "target-i386/kvm.c"
    source.write_text("/* SPDX-License-Identifier: GPL-2.0-or-later */\n" + source.read_text())
    git(checkout, "commit", "-q", "-am", "target-i386: Add SPDX identifier")
    kvmlint("fix", "--rule", "irq0-override", str(checkout))
    for created in ("target-i386/kvm_i386.h", "target-i386/kvm-stub.c"):
        head = (checkout / created).read_text().split("*/", 1)[0]
        # kvm-all.c's boilerplate says "GNU GPL, version 2 or later"
        assert " * SPDX-License-Identifier: GPL-2.0-or-later\n" in head and "licensed under" not in head


def test_fix_honours_the_configuration_check_uses(checkout):
    (checkout / "kvmlint.toml").write_text('ignore = ["KVM002"]\n[per-file-ignores]\n"hw/*.c" = ["KVM001"]\n')
    kvmlint("fix", str(checkout))
    changed = git(checkout, "diff", "--name-only").split()
    assert "hw/virtio-pci.c" not in changed and "hw/pc_piix.c" not in changed  # per-file ignore, ignored rule
    assert "cpus.c" in changed and not (checkout / "target-i386/kvm_i386.h").exists()
