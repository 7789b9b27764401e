"""Build gate: `kvmlint fix` must leave a QEMU-shaped tree that still compiles and links.

fixtures/build-gate/ is a small C tree in the shape of 2012 QEMU's KVM layer
(kvm.h, kvm-all.c, kvm-stub.c, cpus.c, devices, target-i386/ and target-arm/,
a fake kernel) that really builds, for each target with KVM and without (the
stub file instead of the core).  The driver below reads the tree's own build
files to pick the objects, so a build-file line the fix forgets (the stub
line of the 2012 review) breaks the link exactly as it would break QEMU's.
tools/print-predicates prints every KVM predicate the tree defines; the
values must be the ones kvmlint's semantic model gives.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvmlint.analysis import analyse
from kvmlint.model import infer_era, load_model
from kvmlint.source.discover import discover

if shutil.which("gcc") is None:
    pytest.skip("gcc is not installed: the build gate needs a C compiler", allow_module_level=True)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "build-gate"
PRINTER = "tools/print-predicates.c"
TARGET_ARCHES = {"i386": "x86", "arm": "arm"}  # target folder name -> model architecture
CFLAGS = ("-std=gnu11", "-O0", "-Wall", "-Wmissing-prototypes", "-Werror")


class BuildError(Exception):
    """The tree does not compile or link; the message holds gcc's output."""


@dataclass(frozen=True)
class BuildConfig:
    target: str  # a target-<target>/ folder: i386 or arm
    kvm: bool

    @property
    def label(self) -> str:
        return f"{self.target}-{'kvm' if self.kvm else 'nokvm'}"


CONFIGS = [BuildConfig(target, kvm) for target in TARGET_ARCHES for kvm in (True, False)]


# --- the build driver: Makefile.target/Makefile.objs lines -> objects -> gcc ----------------

MAKE_ASSIGNMENT = re.compile(r"^(?P<name>\S+?)\s*(?P<op>\+=|:=|=)\s*(?P<value>.*)$")
ADDPREFIX = re.compile(r"^\$\(addprefix\s+(?P<prefix>[^,]+),\s*\$\((?P<name>[\w-]+)\)\)$")
MAKE_VARIABLE = re.compile(r"\$\((\w+)\)")


def make_variables(tree: Path, config: BuildConfig) -> dict[str, str]:
    """What configure and default-configs/<target>-softmmu.mak would set."""
    variables = {
        "TARGET_BASE_ARCH": config.target,
        "CONFIG_KVM": "y" if config.kvm else "n",
        "CONFIG_NO_KVM": "n" if config.kvm else "y",
    }
    for line in (tree / "default-configs" / f"{config.target}-softmmu.mak").read_text().splitlines():
        name, _, value = line.partition("=")
        if name.startswith("CONFIG_") and value:
            variables[name.strip()] = value.strip()
    return variables


def object_lists(tree: Path, makefile: str, variables: dict[str, str]) -> dict[str, list[str]]:
    """The object lists (`obj`, `common-obj`, ...) a Makefile enables, as root-relative paths.

    Understood: `<list>-y` and `<list>-$(CONFIG_X)` with `=`, `+=` and `:=`,
    `$(VAR)` in names and entries, `dir/` entries (the same list of
    dir/Makefile.objs) and `<list>-y := $(addprefix ../,$(<list>-y))`.
    Assignments to CONFIG_* are skipped: the configuration sets those.
    Anything else is an error, so the gate never builds from a misread file.
    """
    folder = os.path.dirname(makefile)
    entries: dict[str, list[str]] = defaultdict(list)
    for number, raw in enumerate((tree / makefile).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = MAKE_ASSIGNMENT.match(line)
        if match is None:
            raise BuildError(f"{makefile}:{number}: the build driver cannot read {raw!r}")
        name = MAKE_VARIABLE.sub(lambda m: variables.get(m.group(1), ""), match["name"])
        if name.startswith("CONFIG_"):
            continue
        base, _, enabled = name.rpartition("-")
        if enabled != "y":
            continue  # <list>-n, or a CONFIG_X the target does not set
        prefix = ADDPREFIX.match(match["value"])
        if prefix:
            entries[base] = [prefix["prefix"] + entry for entry in entries[base]]
            continue
        value = MAKE_VARIABLE.sub(lambda m: variables.get(m.group(1), ""), match["value"])
        if "$" in value:
            raise BuildError(f"{makefile}:{number}: the build driver cannot expand {raw!r}")
        if match["op"] != "+=":
            entries[base] = []
        entries[base].extend(value.split())

    objects: dict[str, list[str]] = defaultdict(list)
    for base, listed in entries.items():
        for entry in listed:
            path = os.path.normpath(os.path.join(folder, entry))
            if entry.endswith("/"):
                objects[base].extend(object_lists(tree, f"{path}/Makefile.objs", variables).get(base, []))
            else:
                objects[base].append(path)
    return objects


def sources_to_build(tree: Path, config: BuildConfig) -> tuple[list[str], list[str]]:
    """(target sources, common sources): Makefile.target's obj-y and Makefile.objs' common-obj-y."""
    variables = make_variables(tree, config)
    per_target = object_lists(tree, "Makefile.target", variables)
    common = object_lists(tree, "Makefile.objs", variables)
    unknown = (set(per_target) - {"obj"}) | (set(common) - {"common-obj"})
    if unknown:
        raise BuildError(f"object lists the build driver does not know: {sorted(unknown)}")
    target_sources = [obj[: -len(".o")] + ".c" for obj in per_target["obj"]] + [PRINTER]
    common_sources = [obj[: -len(".o")] + ".c" for obj in common["common-obj"]]
    for source in target_sources + common_sources:
        if not (tree / source).is_file():
            raise BuildError(f"the build files name {source[:-2]}.o but {source} does not exist")
    return target_sources, common_sources


def compile_flags(tree: Path, config: BuildConfig, per_target: bool) -> list[str]:
    """Common objects are compiled once for every target: no NEED_CPU_H, no CONFIG_KVM,
    no target folder on the include path (2012 QEMU's rules.mak and Makefile.target)."""
    flags = [*CFLAGS, f"-I{tree}"]
    if per_target:
        flags += [f"-I{tree / f'target-{config.target}'}", "-DNEED_CPU_H", f"-DTARGET_{config.target.upper()}"]
        if config.kvm:
            flags.append("-DCONFIG_KVM")
    return flags


def run_gcc(arguments: list[str], what: str) -> None:
    result = subprocess.run(["gcc", *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"{what} failed:\n{result.stderr}")


def build(tree: Path, config: BuildConfig, out: Path) -> Path:
    """Compile the configuration's objects and link them with the predicate printer."""
    target_sources, common_sources = sources_to_build(tree, config)
    jobs = [(source, compile_flags(tree, config, per_target=True)) for source in target_sources]
    jobs += [(source, compile_flags(tree, config, per_target=False)) for source in common_sources]
    out.mkdir(parents=True, exist_ok=True)

    def compile_one(job: tuple[str, list[str]]) -> Path:
        source, flags = job
        obj = out / (source.replace("/", "__")[: -len(".c")] + ".o")
        run_gcc([*flags, "-c", str(tree / source), "-o", str(obj)], f"{config.label}: compiling {source}")
        return obj

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objects = list(pool.map(compile_one, jobs))
    program = out / "print-predicates"
    run_gcc([*(str(obj) for obj in objects), "-o", str(program)], f"{config.label}: linking")
    return program


def print_predicates(program: Path, settings: dict[str, str]) -> dict[str, bool]:
    result = subprocess.run(
        [str(program), *(f"{name}={value}" for name, value in settings.items())],
        capture_output=True, text=True, check=True,
    )
    values = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert set(values.values()) <= {"0", "1"}, result.stdout
    return {name: value == "1" for name, value in values.items()}


# --- the trees: pristine, and copies fixed by kvmlint ----------------------------------------

def kvmlint_fix(tree: Path, *rule: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kvmlint", "fix", *rule, str(tree)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    """The fixture itself ("pristine"), and copies after every safe fix ("fixed") and after
    `--rule irq0-override` alone."""
    made = {"pristine": FIXTURE}
    for name, rule in (("fixed", ()), ("irq0-override", ("--rule", "irq0-override"))):
        tree = tmp_path_factory.mktemp(name) / "qemu"
        shutil.copytree(FIXTURE, tree)
        result = kvmlint_fix(tree, *rule)
        assert result.returncode == 0, f"kvmlint fix {' '.join(rule)} left findings:\n{result.stderr}"
        made[name] = tree
    return made


@pytest.fixture(scope="module")
def programs(trees, tmp_path_factory) -> dict[tuple[str, BuildConfig], Path | BuildError]:
    """Every tree built in every configuration (built once; a failure fails only its tests)."""
    out = tmp_path_factory.mktemp("build")
    built: dict[tuple[str, BuildConfig], Path | BuildError] = {}
    for name, tree in trees.items():
        for config in CONFIGS:
            try:
                built[name, config] = build(tree, config, out / name / config.label)
            except BuildError as error:
                built[name, config] = error
    return built


def program_for(programs, tree: str, config: BuildConfig) -> Path:
    program = programs[tree, config]
    if isinstance(program, BuildError):
        pytest.fail(str(program))
    return program


# --- the gate --------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.label)
@pytest.mark.parametrize("tree", ["pristine", "fixed", "irq0-override"])
def test_builds_and_links(programs, tree, config):
    program = program_for(programs, tree, config)
    assert print_predicates(program, {"kernel_irqchip": "on"})["kvm_irqchip_in_kernel"] is config.kvm


def test_fix_moves_irq0_override_into_target_i386(trees):
    fixed = trees["irq0-override"]
    assert (fixed / "target-i386" / "kvm_i386.h").is_file()
    assert "kvm_allows_irq0_override" in (fixed / "target-i386" / "kvm-stub.c").read_text()
    for common in ("kvm.h", "kvm-all.c", "kvm-stub.c"):
        assert "kvm_allows_irq0_override" not in (fixed / common).read_text(), common


@pytest.mark.parametrize("tree", ["pristine", "fixed"])
def test_tree_is_read_as_2012(trees, tree):
    """The model era the comparisons below use is the one kvmlint infers for the tree."""
    analysis = analyse(discover([str(trees[tree])]))
    assert infer_era(analysis.index.defined_symbols() | set(analysis.index.assignments)) == "2012"


def model_settings(config) -> dict[str, str]:
    """A model configuration as the printer's arguments: kernel_irqchip and the fake kernel's caps."""
    settings = {}
    for fact, value in config.facts:
        if fact == "irqchip":
            settings["kernel_irqchip"] = value
        elif fact.startswith("KVM_CAP_") and isinstance(value, bool):
            settings[fact] = "1" if value else "0"
        else:
            raise AssertionError(f"the printer cannot set the model fact {fact}={value!r}")
    return settings


# The predicates each tree defines: the fix introduces one per question its sites ask.
EXPECTED_PREDICATES = {
    "pristine": {"kvm_irqchip_in_kernel"},
    "irq0-override": {"kvm_irqchip_in_kernel"},
    "fixed": {
        "kvm_irqchip_in_kernel", "kvm_async_interrupts_enabled", "kvm_irqfds_enabled",
        "kvm_msi_via_irqfd_enabled", "kvm_gsi_routing_enabled",
    },
}


@pytest.mark.parametrize("target", TARGET_ARCHES)
@pytest.mark.parametrize("tree", ["pristine", "fixed", "irq0-override"])
def test_predicates_match_the_model(programs, tree, target):
    model = load_model("2012")
    arch = TARGET_ARCHES[target]
    program = program_for(programs, tree, BuildConfig(target, kvm=True))
    settings_checked = set()
    for config in model.configurations(arch):
        printed = print_predicates(program, model_settings(config))
        expected = EXPECTED_PREDICATES[tree] | ({"kvm_allows_irq0_override"} if arch == "x86" else set())
        assert set(printed) == expected
        wrong = {
            name: (value, model.predicate(arch, name, config))
            for name, value in printed.items()
            if value != model.predicate(arch, name, config)
        }
        assert not wrong, f"{config.label}: printed vs model: {wrong}"
        settings_checked.add(config["irqchip"])
    assert settings_checked == set(model.valid_irqchip_settings(arch).values)


@pytest.mark.parametrize("target", TARGET_ARCHES)
@pytest.mark.parametrize("tree", ["pristine", "fixed", "irq0-override"])
def test_without_kvm_the_stubs_answer(programs, tree, target):
    printed = print_predicates(program_for(programs, tree, BuildConfig(target, kvm=False)), {"kernel_irqchip": "on"})
    # Without KVM the PIT and IOAPIC are QEMU's own, so IRQ0 can always be overridden.
    assert printed == {name: name == "kvm_allows_irq0_override" for name in printed}


def test_forgotten_stub_build_line_fails_the_link(trees, tmp_path):
    """The 2012 review bug: target-i386/kvm-stub.c exists but nothing builds it."""
    tree = tmp_path / "qemu"
    shutil.copytree(trees["fixed"], tree)
    makefile = tree / "target-i386" / "Makefile.objs"
    stub_line = "obj-$(CONFIG_NO_KVM) += kvm-stub.o\n"
    assert stub_line in makefile.read_text()
    makefile.write_text(makefile.read_text().replace(stub_line, ""))
    with pytest.raises(BuildError, match=r"undefined reference to `kvm_allows_irq0_override'"):
        build(tree, BuildConfig("i386", kvm=False), tmp_path / "build")
