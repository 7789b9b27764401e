"""Hostile and unlucky input: kvmlint never crashes, never hangs and stays bounded.

Every kvmlint run here is a subprocess under CPU-time and memory rlimits and a
timeout, so a regression fails the test instead of eating the machine.  The
sizes are chosen so that quadratic behaviour would need far more CPU time than
the limit allows: the tests assert completion, not speed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "qemu-snippets"

PROXY_FUNCTION = """\
static bool cpu_thread_is_idle(CPUArchState *env)
{
    if (!env->halted || kvm_irqchip_in_kernel()) {
        return false;
    }
    return true;
}
"""


def run_kvmlint(
    *args: str, cwd: Path, cpu_seconds: int = 30, memory_mb: int = 1024, timeout: int = 120, env: dict | None = None,
) -> subprocess.CompletedProcess:
    """`kvmlint ARGS` in a child that the kernel stops past its CPU time or memory."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, "-m", "kvmlint", *args],
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        preexec_fn=limit,
        env={**os.environ, **(env or {})},
    )


def assert_clean_exit(result: subprocess.CompletedProcess, allowed=(0, 1)) -> str:
    """No signal, no traceback, no internal error; return stderr as text."""
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode in allowed, (result.returncode, stderr[-2000:])
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-2000:]
    return stderr


def common_tree(directory: Path) -> Path:
    """A tree whose files are all common code: `configure` marks the root."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "configure").write_text("#!/bin/sh\n")
    return directory


def finding_paths(result: subprocess.CompletedProcess) -> set[str]:
    return {finding["path"] for finding in json.loads(result.stdout)["findings"]}


# Item 6: a non-UTF-8 byte in a string literal of a KVM file.


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_non_utf8_string_literal_keeps_every_finding(tmp_path, jobs):
    tree = common_tree(tmp_path / "tree")
    # Enough files for the worker pool to start with -j2.
    for number in range(20):
        (tree / f"file{number}.c").write_text(PROXY_FUNCTION)
    (tree / "bad.c").write_bytes(
        b'static const char *name = "kernel_irqchip=\xff\xfe";\n' + PROXY_FUNCTION.encode()
    )
    result = run_kvmlint("check", "--format", "json", "-j", jobs, ".", cwd=tree)
    stderr = assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"bad.c"} | {f"file{number}.c" for number in range(20)}
    assert "bad.c: not valid UTF-8 (line 1)" in stderr


# Items 9 and 10: deep nesting and sizes that are quadratic if walked naively.


def test_thousand_nested_ifdefs_are_analysed_with_a_warning(tmp_path):
    tree = common_tree(tmp_path / "tree")
    depth = 1000
    source = "".join(f"#ifdef CONFIG_{n}\n" for n in range(depth)) + PROXY_FUNCTION + "#endif\n" * depth
    (tree / "nested.c").write_text(source)
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree)
    stderr = assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"nested.c"}
    assert "nested.c: #if nesting deeper than 200 levels" in stderr


def test_many_proxy_uses_in_one_function_stay_linear(tmp_path):
    tree = common_tree(tmp_path / "tree")
    uses = "".join(f"    if (kvm_irqchip_in_kernel()) {{ kvm_irqchip_add_irqfd(s, {n}); }}\n" for n in range(4000))
    (tree / "many.c").write_text(f"void many_uses(void *s)\n{{\n{uses}}}\n")
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree, cpu_seconds=20)
    assert_clean_exit(result, allowed=(1,))
    assert len(json.loads(result.stdout)["findings"]) == 4000


def test_nested_guards_with_a_use_at_every_level_stay_linear(tmp_path):
    tree = common_tree(tmp_path / "tree")
    depth = 5_000
    (tree / "guards.c").write_text(
        "void guards(void)\n" + "{ if (kvm_irqchip_in_kernel()) " * depth + ";" + "}" * depth + "\n"
    )
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree, cpu_seconds=20)
    stderr = assert_clean_exit(result, allowed=(1,))
    assert len(json.loads(result.stdout)["findings"]) == depth
    assert "guards.c: too many nested uses to read all their guarded code" in stderr


# Each kind of site: its condition and guarded code, as the sites of one function hold them.
SITE_KINDS = (
    "    if (kvm_irqchip_in_kernel()) {{ kvm_irqchip_assign_irqfd(s, {n}); }}\n",  # irqfd evidence
    "    if (kvm_irqchip_in_kernel() && n > {n}) {{ msix_set_vector_notifiers(s, {n}); }}\n",  # MSI evidence
    "    if (!kvm_irqchip_in_kernel()) {{ printf(\"{n}\"); }}\n",  # no evidence: candidates
    "    if (kvm_irqchip_in_kernel() || n == {n}) {{ n++; }}\n",  # no evidence, a condition of its own
)


def _site_answers(result: subprocess.CompletedProcess) -> list[tuple]:
    """What a user reads about each finding, without its place."""
    return [
        (f["message"], f.get("replacement"), tuple(f.get("details", ())), json.dumps(f.get("fix"), sort_keys=True))
        for f in sorted(json.loads(result.stdout)["findings"], key=lambda f: f["line"])
    ]


def test_thousands_of_sites_in_one_function_keep_their_own_answers(tmp_path):
    """Sites that ask the same question share the model's work; each still gets the answer it
    gets alone (proposal, verdict and candidates follow its own condition and evidence)."""
    alone = common_tree(tmp_path / "alone")
    (alone / "sites.c").write_text(
        "void sites(void *s, int n)\n{\n" + "".join(kind.format(n=0) for kind in SITE_KINDS) + "}\n")
    single = _site_answers(run_kvmlint("check", "--format", "json", ".", cwd=alone))
    assert len(set(single)) == len(SITE_KINDS)  # four different answers to keep apart
    assert [answer[1] for answer in single[:2]] == ["kvm_irqfds_enabled()", "kvm_msi_via_irqfd_enabled()"]

    many = common_tree(tmp_path / "many")
    rounds = 500
    (many / "sites.c").write_text(
        "void sites(void *s, int n)\n{\n" + "".join(kind.format(n=0) for _ in range(rounds) for kind in SITE_KINDS)
        + "}\n")
    result = run_kvmlint("check", "--format", "json", "-j", "1", ".", cwd=many, cpu_seconds=30)
    assert_clean_exit(result, allowed=(1,))
    assert _site_answers(result) == single * rounds


def test_long_line_of_slashes_and_suppressions(tmp_path):
    tree = common_tree(tmp_path / "tree")
    source = PROXY_FUNCTION.replace(
        "    if (", "    /* kvmlint: ignore[KVM001] */\n    if ("
    ) + "/" * 400_000 + "\n" + "kvmlint: ignore " * 20_000 + "\n"
    (tree / "slashes.c").write_text(source)
    result = run_kvmlint("check", "--format", "json", "--show-suppressed", ".", cwd=tree, cpu_seconds=20)
    assert_clean_exit(result, allowed=(0,))


def test_deeply_nested_macro_and_expression(tmp_path):
    tree = common_tree(tmp_path / "tree")
    depth = 20_000
    (tree / "macro.c").write_text("#define DEEP " + "kvm_wrap(" * depth + "1" + ")" * depth + "\n")
    parens = 5_000
    (tree / "expr.c").write_text(
        "int deep(void)\n{\n    return " + "(" * parens + "kvm_irqchip_in_kernel()" + ")" * parens + ";\n}\n"
    )
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree, cpu_seconds=8)
    assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"expr.c"}


def test_long_line_of_stars_is_a_warning_and_keeps_the_file_s_findings(tmp_path):
    # One 200 KB line of `*` makes a syntax-error node with 200,000 children,
    # which a tree-sitter query walks in quadratic time (30 s here before).
    tree = common_tree(tmp_path / "tree")
    (tree / "plain.c").write_text(PROXY_FUNCTION)
    (tree / "stars.c").write_text(
        PROXY_FUNCTION
        + 'static const char *option = "kernel_irqchip=split";\n'
        + "void init(KVMState *s) { s->irqfds = kvm_check_extension(s, KVM_CAP_IRQFD); }\n"
        + "*" * 200_000 + "\n"
    )
    result = run_kvmlint("check", "--format", "json", "-j", "1", ".", cwd=tree, cpu_seconds=10)
    stderr = assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"plain.c", "stars.c"}
    assert "stars.c: mostly unparseable" in stderr


def test_proxy_use_nested_100000_deep_is_reported(tmp_path):
    # Deeper than 65,535 levels, where tree-sitter queries stop looking.
    tree = common_tree(tmp_path / "tree")
    parens = 100_000
    (tree / "expr.c").write_text(
        "int deep(void)\n{\n    return " + "(" * parens + "kvm_irqchip_in_kernel()" + ")" * parens + ";\n}\n"
    )
    (tree / "plain.c").write_text(PROXY_FUNCTION)
    result = run_kvmlint("check", "--format", "json", "-j", "1", ".", cwd=tree, cpu_seconds=15)
    assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"expr.c", "plain.c"}


def copy_fixture(name: str, directory: Path) -> Path:
    tree = directory / name
    shutil.copytree(FIXTURES / name, tree, symlinks=True)
    return tree


def findings(result: subprocess.CompletedProcess) -> set[tuple[str, str, int]]:
    return {(f["code"], f["path"], f["line"]) for f in json.loads(result.stdout)["findings"]}


# Item 7: special files in the tree or named by build files.


def test_special_files_in_the_tree_are_skipped_with_a_warning(tmp_path):
    tree = copy_fixture("qemu-2012", tmp_path)
    expected = findings(run_kvmlint("check", "--format", "json", ".", cwd=tree))
    os.mkfifo(tree / "hw" / "fifo.c")
    (tree / "hw" / "zero.c").symlink_to("/dev/zero")
    (tree / "hw" / "null.h").symlink_to("/dev/null")
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree, timeout=60)
    stderr = assert_clean_exit(result)
    assert findings(result) == expected
    for name in ("hw/fifo.c", "hw/zero.c", "hw/null.h"):
        assert f"warning: {name}: not a regular file; skipped" in stderr


def test_build_files_naming_special_files_are_not_read(tmp_path):
    old = copy_fixture("qemu-2012", tmp_path)
    expected_old = findings(run_kvmlint("check", "--format", "json", ".", cwd=old))
    with open(old / "default-configs" / "pci.mak", "a") as config:
        config.write("include /dev/zero\ninclude /dev/stdin\n")
    os.mkfifo(old / "default-configs" / "fifo.mak")
    with open(old / "default-configs" / "arm-softmmu.mak", "a") as config:
        config.write("include fifo.mak\n")
    result = run_kvmlint("check", "--format", "json", ".", cwd=old, timeout=60)
    assert_clean_exit(result)
    assert findings(result) == expected_old

    current = copy_fixture("qemu-current", tmp_path)
    expected_current = findings(run_kvmlint("check", "--format", "json", ".", cwd=current))
    with open(current / "Kconfig", "a") as kconfig:
        kconfig.write("source /dev/zero\nsource fifo/Kconfig\n")
    (current / "fifo").mkdir()
    os.mkfifo(current / "fifo" / "Kconfig")
    os.mkfifo(current / "fifo" / "meson.build")
    with open(current / "meson.build", "a") as meson:
        meson.write("subdir('fifo')\n")
    result = run_kvmlint("check", "--format", "json", ".", cwd=current, timeout=60)
    assert_clean_exit(result)
    assert findings(result) == expected_current


def test_fix_does_not_read_a_special_file_where_it_would_edit(tmp_path):
    tree = copy_fixture("qemu-2012", tmp_path)
    build_file = tree / "target-i386" / "Makefile.objs"
    build_file.unlink()
    os.mkfifo(build_file)  # where the move adds the stub's build line
    result = run_kvmlint("fix", "--rule", "irq0-override", "--no-cache", ".", cwd=tree, timeout=60)
    stderr = assert_clean_exit(result, allowed=(1,))
    assert "target-i386/Makefile.objs: not a regular file" in stderr
    assert stat.S_ISFIFO(build_file.lstat().st_mode)


# Item 8: unreadable directories and over-long paths.


def test_over_long_paths_are_a_warning(tmp_path):
    tree = copy_fixture("qemu-2012", tmp_path)
    expected = findings(run_kvmlint("check", "--format", "json", ".", cwd=tree))
    # 25 levels of 200-character names: the path passes PATH_MAX (4096), so
    # it is made one level at a time, relative to the level above.
    level = os.open(tree / "hw", os.O_RDONLY)
    try:
        for _ in range(25):
            os.mkdir("d" * 200, dir_fd=level)
            below = os.open("d" * 200, os.O_RDONLY, dir_fd=level)
            os.close(level)
            level = below
        with open(os.open("kvm-deep.c", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=level), "w") as deep_file:
            deep_file.write(PROXY_FUNCTION)
    finally:
        os.close(level)
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree)
    stderr = assert_clean_exit(result)
    assert findings(result) == expected
    assert "File name too long" in stderr
    shutil.rmtree(tree / "hw" / ("d" * 200), ignore_errors=True)


def test_unreadable_directory_is_a_warning(tmp_path, monkeypatch, capsys):
    """Root reads every directory, so as root the refusal is simulated where the walk lists it."""
    from kvmlint.source.discover import discover

    tree = copy_fixture("qemu-2012", tmp_path)
    locked = tree / "hw" / "locked"
    locked.mkdir()
    (locked / "hidden.c").write_text(PROXY_FUNCTION)
    locked.chmod(0)
    if os.geteuid() == 0:
        real_scandir, real_stat = os.scandir, os.stat

        def inside(path) -> bool:
            return locked in Path(path).parents

        def scandir(path="."):
            if Path(path) == locked or inside(path):
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        def stat(path, *args, **kwargs):
            if inside(path):  # the folder itself can be looked at, not into
                raise PermissionError(13, "Permission denied", str(path))
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(os, "scandir", scandir)
        monkeypatch.setattr(os, "stat", stat)
    try:
        sources = discover([str(tree)])
    finally:
        locked.chmod(0o755)
    assert "hw/cpus.c" not in sources.files and "cpus.c" in sources.files
    assert not any(name.startswith("hw/locked/") for name in sources.files)
    assert ("hw/locked", "directory cannot be read (Permission denied); skipped") in sources.skipped


# Item 10: loops through symlinked folders, and wildcard-heavy object names.


def test_symlinked_folder_loops_in_build_files_end(tmp_path):
    current = copy_fixture("qemu-current", tmp_path)
    expected = findings(run_kvmlint("check", "--format", "json", ".", cwd=current))
    for name in ("loop1", "loop2"):
        (current / "hw" / name).symlink_to(".")
    with open(current / "hw" / "Kconfig", "a") as kconfig:
        kconfig.write("source loop1/Kconfig\nsource loop2/Kconfig\n")
    with open(current / "hw" / "meson.build", "a") as meson:
        meson.write("subdir('loop1')\nsubdir('loop2')\n")
    result = run_kvmlint("check", "--format", "json", ".", cwd=current, cpu_seconds=20, timeout=120)
    assert_clean_exit(result)
    assert findings(result) == expected

    old = copy_fixture("qemu-2012", tmp_path)
    expected = findings(run_kvmlint("check", "--format", "json", ".", cwd=old))
    for name in ("loop1", "loop2"):
        (old / "hw" / name).symlink_to(".")
    (old / "hw" / "Makefile.objs").write_text(
        (old / "hw" / "Makefile.objs").read_text() + "hw-obj-y += loop1/ loop2/\n"
    )
    result = run_kvmlint("check", "--format", "json", ".", cwd=old, cpu_seconds=20, timeout=120)
    assert_clean_exit(result)
    assert findings(result) == expected


def test_wildcard_heavy_object_names_do_not_backtrack(tmp_path):
    old = copy_fixture("qemu-2012", tmp_path)
    expected = findings(run_kvmlint("check", "--format", "json", ".", cwd=old))
    adjacent = "".join(f"$(V{n})" for n in range(40))
    separated = "a".join(f"$(V{n})" for n in range(40))
    (old / "hw" / "Makefile.objs").write_text(
        (old / "hw" / "Makefile.objs").read_text()
        + f"hw-obj-y += {adjacent}zzz.o $(TARGET_ARCH){adjacent}zzz.o {separated}zzz.o\n"
    )
    (old / "hw" / ("a" * 200 + ".c")).write_text("int unrelated;\n")
    result = run_kvmlint("check", "--format", "json", ".", cwd=old, cpu_seconds=20)
    assert_clean_exit(result)
    assert findings(result) == expected


# Item 18: the parent directory of a checkout.


def test_parent_directory_of_a_checkout_checks_the_checkout(tmp_path):
    parent = tmp_path / "src"
    tree = copy_fixture("qemu-2012", parent)
    inside = findings(run_kvmlint("check", "--format", "json", ".", cwd=tree))
    result = run_kvmlint("check", "--format", "json", "src", cwd=tmp_path)
    assert_clean_exit(result, allowed=(1,))
    assert findings(result) == {(code, f"qemu-2012/{path}", line) for code, path, line in inside}

    copy_fixture("qemu-current", parent)
    result = run_kvmlint("check", "src", cwd=tmp_path)
    stderr = assert_clean_exit(result, allowed=(2,))
    assert "src holds 2 QEMU checkouts (src/qemu-2012, src/qemu-current): check them one at a time" in stderr


def test_a_tree_without_a_checkout_is_named_in_a_warning(tmp_path):
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "idle.c").write_text(PROXY_FUNCTION)
    result = run_kvmlint("check", "loose", cwd=tmp_path)
    stderr = assert_clean_exit(result, allowed=(1,))
    assert "no QEMU checkout found here or above" in stderr


# Item 16: the checked repository's git configuration runs nothing.


def test_repository_git_configuration_runs_no_command(tmp_path):
    tree = copy_fixture("qemu-2012", tmp_path)
    marker = tmp_path / "ran"
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "HOME": str(tmp_path)}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tree, check=True, capture_output=True, timeout=60, env={**os.environ, **env})

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=Q", "-c", "user.email=q@example.org", "commit", "-qm", "tree")
    (tree / ".gitattributes").write_text("*.c filter=owned diff=owned\n")
    command = f"touch {marker}; cat"
    for key in ("core.fsmonitor", "filter.owned.clean", "filter.owned.smudge", "diff.owned.textconv",
                "diff.owned.command", "diff.external", "core.pager"):
        git("config", key, command)
    with open(tree / "cpus.c", "a") as source:
        source.write(PROXY_FUNCTION.replace("cpu_thread_is_idle", "cpu_thread_is_idle2"))
    git("add", "cpus.c")
    marker.unlink()  # git itself ran them just now
    for args in (("check", "."), ("check", "--staged", "."), ("check", "--diff-base", "HEAD", ".")):
        result = run_kvmlint(*args, cwd=tree, env=env)
        assert_clean_exit(result, allowed=(1,))
        assert not marker.exists(), args


# Item 9: a 600-term string concatenation in a Python test; deeply nested TOML.


def test_long_python_concatenation_is_skipped_with_a_warning(tmp_path):
    tree = common_tree(tmp_path / "tree")
    tests = tree / "tests" / "functional" / "aarch64"
    tests.mkdir(parents=True)
    terms = " + ".join(f"'kernel_irqchip=on{n}'" for n in range(600))
    (tests / "test_long.py").write_text(f"def test():\n    args = {terms}\n")
    (tests / "test_split.py").write_text("def test(vm):\n    vm.add_args('-machine', 'virt,kernel_irqchip=split')\n")
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree)
    stderr = assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"tests/functional/aarch64/test_split.py"}
    assert "test_long.py: nested more than 150 levels deep (line 2); skipped" in stderr


def test_deeply_nested_toml_is_a_one_line_error(tmp_path):
    tree = common_tree(tmp_path / "tree")
    (tree / "kvmlint.toml").write_text("select = " + "[" * 5000 + "]" * 5000 + "\n")
    result = run_kvmlint("check", ".", cwd=tree)
    stderr = assert_clean_exit(result, allowed=(2,))
    assert stderr == "kvmlint: kvmlint.toml: invalid TOML: nested too deeply\n"


# Item 12: file names that are not UTF-8, in every format.


@pytest.mark.parametrize("format_name", ["text", "json", "sarif", "gitlab", "github"])
def test_non_utf8_file_names_in_every_format(tmp_path, format_name):
    tree = common_tree(tmp_path / "tree")
    (tree / os.fsdecode(b"idle\xff.c")).write_text(PROXY_FUNCTION)
    result = run_kvmlint("check", "--format", format_name, ".", cwd=tree, env={"PYTHONIOENCODING": "utf-8"})
    assert_clean_exit(result, allowed=(1,))
    output = result.stdout.decode("utf-8")  # valid UTF-8 whatever the file names
    if format_name == "sarif":
        document = json.loads(output)
        assert document["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "idle%FF.c"
    elif format_name in ("json", "gitlab"):
        assert "idle\\\\xff.c" in output and json.loads(output)
    else:
        assert "idle\\xff.c" in output


# Item 13: a tree's configuration chooses what to check, not where to write.


@pytest.mark.parametrize("output_file", ["../outside.txt", "{tmp}/absolute.txt", "link/outside.txt"])
def test_tree_config_cannot_write_outside_the_tree(tmp_path, output_file):
    output_file = output_file.format(tmp=tmp_path)
    tree = common_tree(tmp_path / "tree")
    (tree / "idle.c").write_text(PROXY_FUNCTION)
    (tmp_path / "elsewhere").mkdir()
    (tree / "link").symlink_to(tmp_path / "elsewhere")
    (tree / "kvmlint.toml").write_text(f'output-file = "{output_file}"\n')
    before = sorted(tmp_path.rglob("*"))
    result = run_kvmlint("check", ".", cwd=tree)
    stderr = assert_clean_exit(result, allowed=(2,))
    assert stderr == "kvmlint: kvmlint.toml: 'output-file' must name a file inside the tree\n"
    assert sorted(tmp_path.rglob("*")) == before


def test_tree_config_writes_inside_the_tree(tmp_path):
    tree = common_tree(tmp_path / "tree")
    (tree / "idle.c").write_text(PROXY_FUNCTION)
    (tree / "kvmlint.toml").write_text('output-file = "reports/kvmlint.txt"\n')
    (tree / "reports").mkdir()
    result = run_kvmlint("check", ".", cwd=tree)
    assert_clean_exit(result, allowed=(1,))
    assert "idle.c:3:" in (tree / "reports" / "kvmlint.txt").read_text()


def test_config_in_a_parent_of_a_tree_outside_git_does_not_apply(tmp_path):
    (tmp_path / "kvmlint.toml").write_text('select = ["KVM002"]\n')
    tree = common_tree(tmp_path / "tree")
    (tree / "idle.c").write_text(PROXY_FUNCTION)
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree)
    assert_clean_exit(result, allowed=(1,))
    assert finding_paths(result) == {"idle.c"}


# Item 15: a tree cannot start more processes than there are CPUs.


def test_tree_config_jobs_is_capped_at_the_cpu_count(tmp_path):
    from kvmlint.cli.config import load_config
    from kvmlint.source.workers import default_jobs

    tree = common_tree(tmp_path / "tree")
    (tree / "kvmlint.toml").write_text("jobs = 300\n")
    assert load_config(tree).jobs == default_jobs()
    (tree / "kvmlint.toml").write_text("jobs = 1\n")
    assert load_config(tree).jobs == 1


# Item 17: every TOML spelling of [tool.kvmlint], and a `tool` that is no table.


@pytest.mark.parametrize(
    "pyproject",
    [
        '[tool.kvmlint]\nselect = ["KVM002"]\n',
        '[tool]\nkvmlint = { select = ["KVM002"] }\n',
        'tool.kvmlint.select = ["KVM002"]\n',
        '[tool]\nkvmlint.select = ["KVM002"]\n',
    ],
)
def test_pyproject_table_in_any_spelling(tmp_path, pyproject):
    tree = common_tree(tmp_path / "tree")
    (tree / "idle.c").write_text(PROXY_FUNCTION)
    (tree / "pyproject.toml").write_text(pyproject)
    result = run_kvmlint("check", ".", cwd=tree)
    assert_clean_exit(result, allowed=(0,))  # KVM001 not selected


def test_pyproject_tool_that_is_not_a_table(tmp_path):
    tree = common_tree(tmp_path / "tree")
    (tree / "pyproject.toml").write_text("tool = 5  # kvmlint\n")
    result = run_kvmlint("check", ".", cwd=tree)
    stderr = assert_clean_exit(result, allowed=(2,))
    assert stderr == "kvmlint: pyproject.toml: 'tool' must be a table\n"


# Item 14: --output-file writes through special files and symlinks.


def test_output_file_writes_through_symlinks_and_special_files(tmp_path):
    tree = common_tree(tmp_path / "tree")
    (tree / "idle.c").write_text(PROXY_FUNCTION)
    (tmp_path / "report.txt").write_text("old\n")
    (tmp_path / "link.txt").symlink_to("report.txt")
    (tmp_path / "null").symlink_to(os.devnull)
    result = run_kvmlint("check", "-o", str(tmp_path / "link.txt"), ".", cwd=tree)
    assert_clean_exit(result, allowed=(1,))
    assert (tmp_path / "link.txt").is_symlink() and "idle.c:3:" in (tmp_path / "report.txt").read_text()
    result = run_kvmlint("check", "-o", str(tmp_path / "null"), ".", cwd=tree)
    assert_clean_exit(result, allowed=(1,))
    assert (tmp_path / "null").is_symlink() and Path(os.devnull).is_char_device()
    # Links and nodes of our own: a regression replaces them, not the system's.
    (tmp_path / "stdout").symlink_to("/dev/stdout")
    result = run_kvmlint("check", "-o", str(tmp_path / "stdout"), ".", cwd=tree)
    assert_clean_exit(result, allowed=(1,))
    assert b"idle.c:3:" in result.stdout and (tmp_path / "stdout").is_symlink()
    if os.geteuid() == 0 and Path("/dev/full").is_char_device():
        full = tmp_path / "full"
        os.mknod(full, 0o666 | stat.S_IFCHR, os.stat("/dev/full").st_rdev)
        result = run_kvmlint("check", "-o", str(full), ".", cwd=tree)
        stderr = assert_clean_exit(result, allowed=(2,))
        assert stderr == f"kvmlint: {full}: cannot write the report (No space left on device)\n"
        assert full.is_char_device()


def test_long_include_chain_in_device_configs_ends(tmp_path):
    old = copy_fixture("qemu-2012", tmp_path)
    expected = findings(run_kvmlint("check", "--format", "json", ".", cwd=old))
    configs = old / "default-configs"
    for number in range(2000):
        (configs / f"chain{number}.mak").write_text(f"include chain{number + 1}.mak\nCONFIG_CHAIN{number}=y\n")
    with open(configs / "pci.mak", "a") as pci:
        pci.write("include chain0.mak\n")
    result = run_kvmlint("check", "--format", "json", ".", cwd=old)
    assert_clean_exit(result)
    assert findings(result) == expected



def test_sarif_of_many_findings_on_one_long_line_stays_bounded(tmp_path):
    tree = common_tree(tmp_path / "tree")
    depth = 3_000  # one 100 KB line holding 3,000 findings
    (tree / "line.c").write_text("void line(void) " + "{ if (kvm_irqchip_in_kernel()) " * depth + ";" + "}" * depth + "\n")
    result = run_kvmlint("check", "--format", "sarif", ".", cwd=tree, memory_mb=700, cpu_seconds=60)
    assert_clean_exit(result, allowed=(1,))
    assert len(json.loads(result.stdout)["runs"][0]["results"]) == depth


# Build-file bounds: each one hit is named once, on a cold and on a warm run, and by `kvmlint scope`.


def _deep_meson(tree: Path) -> None:
    folder = tree / "hw"
    for _ in range(70):
        with open(folder / "meson.build", "a") as meson:
            meson.write("subdir('d')\n")
        folder = folder / "d"
        folder.mkdir()
    (folder / "meson.build").write_text("system_ss.add(files('deep.c'))\n")


def _symlink_loop(tree: Path, build_file: str, line: str) -> None:
    (tree / "hw" / "loop").symlink_to(".")
    with open(tree / "hw" / build_file, "a") as stream:
        stream.write(line)


def _include_chain(tree: Path) -> None:
    configs = tree / "default-configs"
    for number in range(40):
        (configs / f"chain{number}.mak").write_text(f"include chain{number + 1}.mak\nCONFIG_CHAIN{number}=y\n")
    with open(configs / "pci.mak", "a") as pci:
        pci.write("include chain0.mak\n")


def _include_itself(tree: Path) -> None:
    with open(tree / "default-configs" / "pci.mak", "a") as pci:
        pci.write("include pci.mak\n")


def _wildcards(tree: Path) -> None:
    with open(tree / "hw" / "Makefile.objs", "a") as makefile:
        makefile.write("hw-obj-y += $(A)a$(B)b$(C)c.o\n")


BOUNDS = {
    "meson-depth": ("qemu-current", _deep_meson,
                    "hw/" + "d/" * 63 + "meson.build: subdir() nested deeper than 64 levels; subdir('d') not read"),
    "meson-loop": ("qemu-current", lambda tree: _symlink_loop(tree, "meson.build", "subdir('loop')\n"),
                   "hw/meson.build: hw/loop/ leads back to hw/meson.build through a symlink (a loop?); not read again"),
    "kconfig-loop": ("qemu-current", lambda tree: _symlink_loop(tree, "Kconfig", "source loop/Kconfig\n"),
                     "hw/Kconfig: hw/loop/Kconfig leads back to hw/Kconfig through a symlink (a loop?); not read again"),
    "makefile-loop": ("qemu-2012", lambda tree: _symlink_loop(tree, "Makefile.objs", "hw-obj-y += loop/\n"),
                      "hw/Makefile.objs: hw/loop/ leads back to hw/Makefile.objs through a symlink (a loop?); "
                      "not read again"),
    "include-depth": ("qemu-2012", _include_chain,
                      "default-configs/chain29.mak: `include` nested deeper than 32 levels; "
                      "chain30.mak and what it includes not read"),
    "include-loop": ("qemu-2012", _include_itself,
                     "default-configs/pci.mak: `include pci.mak` includes a file that includes it (a loop); "
                     "not read again"),
    "wildcards": ("qemu-2012", _wildcards,
                  "hw/Makefile.objs: hw/*a*b*c.c has more than 2 variables or wildcards; not matched"),
}


@pytest.mark.parametrize("bound", sorted(BOUNDS))
def test_build_file_bounds_are_named_once_also_on_a_warm_run(tmp_path, monkeypatch, bound):
    from kvmlint.scope.cache import ScopeCache
    from kvmlint.store import Store

    fixture, make, warning = BOUNDS[bound]
    tree = copy_fixture(fixture, tmp_path)
    expected = findings(run_kvmlint("check", "--format", "json", ".", cwd=tree))
    make(tree)
    monkeypatch.setenv("KVMLINT_CACHE_DIR", str(tmp_path / "cache"))
    for run in ("cold", "warm"):
        result = run_kvmlint("check", "--format", "json", ".", cwd=tree, cpu_seconds=20)
        stderr = assert_clean_exit(result)
        assert stderr.count(f"kvmlint: warning: {warning}\n") == 1, (run, stderr)
        assert findings(result) == expected  # the bounds leave the fixture's own build intact
    # The warm run named it from the stored scope reading, which keeps it.
    assert tuple(warning.split(": ", 1)) in ScopeCache(Store.for_tree(tree)).load_scopes().warnings
    stderr = assert_clean_exit(run_kvmlint("scope", ".", cwd=tree), allowed=(0,))
    assert stderr.count(f"kvmlint: warning: {warning}\n") == 1, stderr


def test_fixture_build_files_hit_no_bound(tmp_path):
    for fixture in ("qemu-2012", "qemu-2019", "qemu-2020", "qemu-current"):
        result = run_kvmlint("scope", ".", cwd=FIXTURES / fixture)
        assert "warning" not in assert_clean_exit(result, allowed=(0,)), fixture


# Item 11: memory on facts-dense input.


DENSE_FILES = 16
MEMORY_LIMIT_MB = 440  # measured: 400 is enough; before compact facts, 460 was not


def test_facts_dense_input_checks_within_a_memory_limit(tmp_path):
    """Many facts per byte (a proxy use, capability test and KVM calls in every one of 4,000
    small functions): the facts and findings stay compact, so the check fits in an address
    space that a copy of every name per record would not."""
    tree = copy_fixture("qemu-current", tmp_path)
    folder = tree / "hw" / "dense"
    folder.mkdir()
    sources = []
    for number in range(DENSE_FILES):
        functions = "".join(
            f"static int dense_{number}_{n}(KVMState *s, int irq)\n{{\n"
            f"    if (kvm_irqchip_in_kernel() && kvm_check_extension(s, KVM_CAP_IRQFD)) {{\n"
            f"        kvm_irqchip_add_irqfd_notifier_gsi(s, NULL, NULL, irq + {n});\n"
            f"        msix_set_vector_notifiers(NULL, NULL, NULL, NULL);\n    }}\n"
            f"    kvm_set_irq(s, irq, {n} & 1);\n    return kvm_vm_ioctl(s, KVM_IRQ_LINE, irq);\n}}\n\n"
            for n in range(1_000)
        )
        (folder / f"dense{number}.c").write_text(f'#include "system/kvm.h"\n\n{functions}')
        sources.append(f"'dense{number}.c'")
    (folder / "meson.build").write_text(f"system_ss.add(files({', '.join(sources)}))\n")
    with open(tree / "hw" / "meson.build", "a") as meson:
        meson.write("subdir('dense')\n")
    result = run_kvmlint("check", "--format", "sarif", "-j", "1", "--no-cache", ".", cwd=tree,
                         memory_mb=MEMORY_LIMIT_MB, cpu_seconds=60, timeout=300)
    assert_clean_exit(result, allowed=(1,))
    dense = [r for r in json.loads(result.stdout)["runs"][0]["results"]
             if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("hw/dense/")]
    assert len(dense) == DENSE_FILES * 1_000
    assert {r["ruleId"] for r in dense} == {"KVM001"}


def test_sarif_columns_of_many_findings_on_one_line_with_invalid_utf8(tmp_path):
    """SARIF counts columns in code points: each finding's, on one long line that mixes
    UTF-8 and invalid bytes, as decoding the line up to it says (the line is decoded once)."""
    tree = common_tree(tmp_path / "tree")
    line = b"void line(void) /* \xc3\xa9\xff\xe2\x82 */ " + b"{ if (kvm_irqchip_in_kernel()) /* \xe9 */ " * 2_000
    (tree / "line.c").write_bytes(line + b";" + b"}" * 2_000 + b"\n")
    byte_columns = [f["column"] for f in json.loads(run_kvmlint("check", "--format", "json", ".", cwd=tree).stdout)["findings"]]
    result = run_kvmlint("check", "--format", "sarif", ".", cwd=tree, cpu_seconds=30)
    assert_clean_exit(result, allowed=(1,))
    columns = sorted(r["locations"][0]["physicalLocation"]["region"]["startColumn"]
                     for r in json.loads(result.stdout)["runs"][0]["results"])
    assert len(byte_columns) == 2_000
    assert columns == sorted(len(line[:column - 1].decode("utf-8", "replace")) + 1 for column in byte_columns)


@pytest.mark.parametrize("condition", [b"kvm_irqchip_in_kernel() \xff& assign", b"!kvm_irqchip_in_kernel(\x07)"])
def test_a_condition_the_model_cannot_read_is_left_to_a_person(tmp_path, condition):
    """Bytes that a syntax error leaves in a condition (found by bench/fuzz.py): the site is
    reported for a person to decide, and every other finding is kept."""
    tree = common_tree(tmp_path / "tree")
    (tree / "idle.c").write_text(PROXY_FUNCTION)
    (tree / "odd.c").write_bytes(b"void odd(int assign)\n{\n    if (" + condition + b") {\n        assign++;\n    }\n}\n")
    result = run_kvmlint("check", "--format", "json", ".", cwd=tree)
    assert_clean_exit(result, allowed=(1,))
    odd = [f for f in json.loads(result.stdout)["findings"] if f["path"] == "odd.c"]
    assert finding_paths(result) == {"idle.c", "odd.c"}
    assert [f["details"][-1] for f in odd] == ["the model cannot read the condition: decide by hand"]
    assert_clean_exit(run_kvmlint("fix", "--diff", ".", cwd=tree))
