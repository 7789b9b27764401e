"""The cached build-scope reading: every change that can move a file's scope is noticed by the next run.

Each case prepares a fixture tree, fills the cache, changes the tree the way a
developer would, and checks that the next run reports what a `--no-cache` run
reports, which differs from what it reported before the change.  Folders and
files are dated back first: a stat taken within seconds of a change is never
trusted, and these cases must pass on the stat alone.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import lay_out
from kvmlint.scope.cache import ScopeCache
from kvmlint.store import Store
from test_cache import check, settle

# A function whose proxy is a KVM001 finding wherever it is common code.
PROXY_SOURCE = "int probe_proxy(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n"


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def proxies(findings: list[dict]) -> set[str]:
    return {f["path"] for f in findings if f["code"] == "KVM001"}


# Each case: the fixture, what the tree holds before the first run, the change,
# and the file whose KVM001 finding the change makes appear (True) or go (False).

def separate_build_prepared(tree: Path) -> None:
    write(tree / "roms" / "probe" / "probe.c", PROXY_SOURCE)


def separate_build_gains_a_makefile(tree: Path) -> None:
    write(tree / "roms" / "probe" / "Makefile", "all:\n\tcc -c probe.c\n")


def separate_build_with_makefile(tree: Path) -> None:
    separate_build_prepared(tree)
    separate_build_gains_a_makefile(tree)


def separate_makefile_renamed(tree: Path) -> None:
    (tree / "roms" / "probe" / "Makefile").rename(tree / "roms" / "probe" / "Makefile.old")


def meson_subdir_prepared(tree: Path) -> None:
    append(tree / "hw" / "meson.build", "subdir('probe')\n")
    write(tree / "hw" / "probe" / "probe.c", PROXY_SOURCE)


def meson_subdir_gains_its_build_file(tree: Path) -> None:
    write(tree / "hw" / "probe" / "meson.build", "specific_ss.add(when: 'TARGET_PPC', if_true: files('probe.c'))\n")


def meson_subdir_with_build_file(tree: Path) -> None:
    meson_subdir_prepared(tree)
    meson_subdir_gains_its_build_file(tree)


def meson_subdir_renamed(tree: Path) -> None:
    (tree / "hw" / "probe").rename(tree / "hw" / "probe2")


def kconfig_device(tree: Path, targets: tuple[str, ...], sourced: str = "Kconfig.probe") -> None:
    """A device in hw/intc/ whose Kconfig entry is in a file sourced under another name."""
    write(tree / "hw" / "intc" / "probe.c", PROXY_SOURCE)
    append(tree / "hw" / "intc" / "meson.build", "specific_ss.add(when: 'CONFIG_PROBE', if_true: files('probe.c'))\n")
    append(tree / "hw" / "intc" / "Kconfig", f"\nsource {sourced}\n")
    write(tree / "hw" / "intc" / sourced, "config PROBE\n    bool\n")
    for target in targets:
        append(tree / "configs" / "devices" / f"{target}-softmmu" / "default.mak", "CONFIG_PROBE=y\n")


def kconfig_device_sourced_oddly(tree: Path) -> None:
    kconfig_device(tree, ("ppc64",), sourced="probe.kconfig")


def sourced_file_makes_it_every_targets(tree: Path) -> None:
    write(tree / "hw" / "intc" / "probe.kconfig", "config PROBE\n    bool\n    default y\n")


def kconfig_device_on_ppc(tree: Path) -> None:
    kconfig_device(tree, ("ppc64",))


def new_device_config_enables_it(tree: Path) -> None:
    write(tree / "configs" / "devices" / "riscv64-softmmu" / "default.mak", "CONFIG_PROBE=y\n")


def kconfig_device_on_ppc_and_s390x(tree: Path) -> None:
    kconfig_device(tree, ("ppc64", "s390x"))


def device_config_folder_removed(tree: Path) -> None:
    shutil.rmtree(tree / "configs" / "devices" / "s390x-softmmu")


def make_device_included_oddly(tree: Path) -> None:
    """hw/probe.c built where CONFIG_PROBE is set; ppc64's config includes it from ../probe-devices.inc."""
    write(tree / "hw" / "probe.c", PROXY_SOURCE)
    append(tree / "hw" / "Makefile.objs", "hw-obj-$(CONFIG_PROBE) += probe.o\n")
    append(tree / "default-configs" / "ppc64-softmmu.mak", "include ../probe-devices.inc\n")
    write(tree / "probe-devices.inc", "CONFIG_PROBE=y\n")


def included_file_turns_it_off(tree: Path) -> None:
    write(tree / "probe-devices.inc", "CONFIG_PROBE=n\n")


def make_device_on_ppc(tree: Path) -> None:
    write(tree / "hw" / "probe.c", PROXY_SOURCE)
    append(tree / "hw" / "Makefile.objs", "hw-obj-$(CONFIG_PROBE) += probe.o\n")
    append(tree / "default-configs" / "ppc64-softmmu.mak", "CONFIG_PROBE=y\n")


def new_default_config_enables_it(tree: Path) -> None:
    write(tree / "default-configs" / "mips64-softmmu.mak", "CONFIG_PROBE=y\n")


CASES = {
    "new Makefile in a folder that had no build file": (
        "qemu-2012", separate_build_prepared, separate_build_gains_a_makefile, "roms/probe/probe.c", False),
    "renamed Makefile": (
        "qemu-2012", separate_build_with_makefile, separate_makefile_renamed, "roms/probe/probe.c", True),
    "new meson.build in a folder that had no build file": (
        "qemu-current", meson_subdir_prepared, meson_subdir_gains_its_build_file, "hw/probe/probe.c", False),
    "renamed folder": (
        "qemu-current", meson_subdir_with_build_file, meson_subdir_renamed, "hw/probe2/probe.c", True),
    "edited Kconfig file sourced under another name": (
        "qemu-current", kconfig_device_sourced_oddly, sourced_file_makes_it_every_targets, "hw/intc/probe.c", True),
    "new configs/devices file": (
        "qemu-current", kconfig_device_on_ppc, new_device_config_enables_it, "hw/intc/probe.c", True),
    "removed configs/devices folder": (
        "qemu-current", kconfig_device_on_ppc_and_s390x, device_config_folder_removed, "hw/intc/probe.c", False),
    "edited device config included under another name": (
        "qemu-2012", make_device_included_oddly, included_file_turns_it_off, "hw/probe.c", True),
    "new default-configs file": (
        "qemu-2012", make_device_on_ppc, new_default_config_enables_it, "hw/probe.c", True),
}


@pytest.mark.parametrize("layout", ["plain", "git"])  # discovery walks the first, asks git for the second
@pytest.mark.parametrize("case", list(CASES))
def test_a_warm_run_after_a_build_change_reports_what_an_uncached_run_does(case, layout, tmp_path):
    fixture, prepare, change, path, appears = CASES[case]
    tree = lay_out(tmp_path / fixture, fixture)
    if layout == "git":
        subprocess.run(["git", "init", "-q", str(tree)], check=True)
    prepare(tree)
    settle(tree)
    cache_dir = tmp_path / "cache"
    _, before, _, _, _ = check(tree, cache_dir)
    assert ScopeCache(Store(cache_dir, tree)).load_scopes() is not None  # the reading is stored and holds

    change(tree)
    assert ScopeCache(Store(cache_dir, tree)).load_scopes() is None  # the change is noticed
    _, warm, _, _, _ = check(tree, cache_dir)
    _, uncached, _, _, _ = check(tree, None, "--no-cache")
    assert warm == uncached
    assert (path in proxies(warm)) is appears and (path in proxies(before)) is not appears
