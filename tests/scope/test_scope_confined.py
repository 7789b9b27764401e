"""Build files cannot make scope read outside the tree.

A tree's build files are written by someone else: `subdir('../outside')`, an
absolute subdir(), a symlinked folder or build file, a Makefile.objs folder
or `include` and a Kconfig `source` that lead out of the tree are not read
(nor their folders listed), and each is named in a warning with the build
file that names it.  The CLI runs in a subprocess under resource limits, with
an audit hook recording every file it opens and every folder it lists.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

from conftest import lay_out

REPOSITORY = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 120


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def scope_with_audit(tree: Path, log: Path) -> subprocess.CompletedProcess:
    """`kvmlint scope .` in `tree`; `log` gets every path opened, listed or scanned."""
    probe = (
        "import sys\n"
        f"log = open({str(log)!r}, 'w')\n"
        "def hook(event, args):\n"
        "    if event in ('open', 'os.listdir', 'os.scandir') and isinstance(args[0], (str, bytes)):\n"
        "        log.write(str(args[0]) + '\\n'); log.flush()\n"
        "sys.addaudithook(hook)\n"
        "from kvmlint.cli import main\n"
        "sys.argv = ['kvmlint', 'scope', '.']\n"
        "main()\n"
    )
    environment = dict(os.environ, KVMLINT_CACHE_DIR=str(log.parent / "cache"), PYTHONPATH=str(REPOSITORY))
    return subprocess.run([sys.executable, "-c", probe], cwd=tree, env=environment, capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS, preexec_fn=_limit)


def read_outside(tree: Path, log: Path, outside: Path) -> list[str]:
    real_outside = os.path.realpath(outside)
    return [line for line in log.read_text().splitlines()
            if os.path.realpath(os.path.join(tree, line)).startswith(real_outside + os.sep)
            or os.path.realpath(os.path.join(tree, line)) == real_outside]


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def outside_folder(tmp_path: Path) -> Path:
    """Build files beside the tree, each of which would change its scope if it were read."""
    outside = tmp_path / "outside"
    (outside / "arm").mkdir(parents=True)
    (outside / "meson.build").write_text("specific_ss.add(files('kvm-secret.c'))\n")
    (outside / "Makefile.objs").write_text("obj-y += kvm-secret.o\n")
    (outside / "arm" / "Makefile.objs").write_text("obj-y += kvm-secret.o\n")
    (outside / "Kconfig").write_text("config SECRET\n    bool\n    default y\n")
    (outside / "secret.mak").write_text("CONFIG_SECRET=y\n")
    return outside


def test_meson_subdirs_out_of_the_tree_are_not_read_and_are_named(tmp_path):
    outside = outside_folder(tmp_path)
    tree = lay_out(tmp_path / "qemu", "qemu-current")
    append(tree / "meson.build", f"subdir('../outside')\nsubdir('{outside}')\n")
    (tree / "hw" / "linked").symlink_to(outside)
    append(tree / "hw" / "meson.build", "subdir('linked')\n")
    (tree / "hw" / "intc" / "meson.build").unlink()
    (tree / "hw" / "intc" / "meson.build").symlink_to(outside / "meson.build")
    log = tmp_path / "opened.txt"
    result = scope_with_audit(tree, log)
    assert result.returncode == 0, result.stderr
    assert any(line.endswith("meson.build") for line in log.read_text().splitlines()), "the probe saw no read"
    assert read_outside(tree, log, outside) == []
    assert "kvm-secret.c" not in result.stdout
    for warning in ("meson.build: ../outside/meson.build leads out of the tree",
                    f"meson.build: {outside}/meson.build leads out of the tree",
                    "hw/meson.build: hw/linked/meson.build leads out of the tree",
                    "hw/meson.build: hw/intc/meson.build leads out of the tree"):
        assert f"kvmlint: warning: {warning}; not read" in result.stderr, result.stderr


def test_kconfig_sources_and_config_includes_out_of_the_tree_are_not_read_and_are_named(tmp_path):
    outside = outside_folder(tmp_path)
    tree = lay_out(tmp_path / "qemu", "qemu-current")
    append(tree / "Kconfig", "source ../outside/Kconfig\n")
    append(tree / "configs" / "devices" / "i386-softmmu" / "default.mak", f"include {outside}/secret.mak\n")
    log = tmp_path / "opened.txt"
    result = scope_with_audit(tree, log)
    assert result.returncode == 0, result.stderr
    assert read_outside(tree, log, outside) == []
    assert "kvmlint: warning: Kconfig: ../outside/Kconfig leads out of the tree; not read" in result.stderr
    assert (f"kvmlint: warning: configs/devices/i386-softmmu/default.mak: ../outside/secret.mak leads out of the "
            f"tree; not read") in result.stderr, result.stderr


def test_makefile_folders_and_includes_out_of_the_tree_are_not_read_or_listed_and_are_named(tmp_path):
    outside = outside_folder(tmp_path)
    tree = lay_out(tmp_path / "qemu", "qemu-2012")
    append(tree / "Makefile.objs", f"common-obj-y += ../outside/\nobj-y += {outside}/\nobj-y += ../outside/*/\n")
    append(tree / "default-configs" / "pci.mak", "include ../../outside/secret.mak\n")
    log = tmp_path / "opened.txt"
    result = scope_with_audit(tree, log)
    assert result.returncode == 0, result.stderr
    assert read_outside(tree, log, outside) == []
    assert "kvm-secret" not in result.stdout
    for warning in ("Makefile.objs: ../outside/Makefile.objs leads out of the tree",
                    f"Makefile.objs: {outside}/Makefile.objs leads out of the tree",
                    "Makefile.objs: ../outside/ leads out of the tree",
                    "default-configs/pci.mak: ../outside/secret.mak leads out of the tree"):
        assert f"kvmlint: warning: {warning}; not read" in result.stderr, result.stderr
