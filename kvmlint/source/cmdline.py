"""QEMU command-line text: the `kernel_irqchip` settings, machine types and targets it names.

Shared by KVM006's two readers: C string literals (qtests, machine code) and
Python string expressions (functional tests).  A setting counts only where it
has the shape of a command line, so prose such as an error message
("kernel_irqchip=split is not supported on ARM") is never taken for one:

- the whole text is one option list (`kvm,kernel-irqchip=split`), the value of
  an argument the caller passes on its own, or
- the list follows `-machine`/`-M`/`-accel` and is the last word, or is
  followed by the next option (`-machine q35,kernel_irqchip=split -smp 2`).

Characters that are not literal source (an f-string's `{expr}`, a `%s`
operand) are PLACEHOLDER in the text: never whitespace, never a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PLACEHOLDER = "\ufffc"
MACHINE_OPTIONS = frozenset({"-machine", "--machine", "-M"})
ACCEL_OPTIONS = frozenset({"-accel", "--accel"})
# kernel_irqchip=V as one item of a comma-separated list
SETTING = re.compile(r"(?<![^\s,])(kernel[_-]irqchip)=(\w*)(?=[,\s]|$)")
WORD = re.compile(r"\S+")
QEMU_BINARY = re.compile(r"qemu-system-(\w+)")
ARCH_TAG = re.compile(r"(?<![\w-])arch:(\w+)")
MACHINE_TAG = re.compile(r"(?<![\w-])machine:([\w.-]+)")


@dataclass(frozen=True)
class Setting:
    value: str
    spelling: str
    start: int  # of the value in the text
    end: int
    context: str  # "-machine" | "-accel" | "options"
    option_list: str  # the comma-separated list the setting is an item of

    def machine(self, context: str) -> str | None:
        """The machine type in the same list, unless the list is -accel's (`kvm,...`)."""
        return list_machine(self.option_list) if context != "-accel" else None


def option_context(option: str) -> str | None:
    if option in MACHINE_OPTIONS:
        return "-machine"
    if option in ACCEL_OPTIONS:
        return "-accel"
    return None


def list_machine(option_list: str) -> str | None:
    """The machine type an option list names: its first item without '=', or type=."""
    items = option_list.split(",")
    first = items[0]
    if first and "=" not in first and PLACEHOLDER not in first:
        return first
    for item in items:
        if item.startswith("type=") and PLACEHOLDER not in item:
            return item[len("type="):]
    return None


def find_settings(text: str) -> list[Setting]:
    words = [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]
    found = []
    for index, (start, end, word) in enumerate(words):
        matches = list(SETTING.finditer(word))
        if not matches:
            continue
        if len(words) == 1:
            context = "options"
        else:
            context = option_context(words[index - 1][2]) if index else None
            last_or_followed_by_option = index + 1 == len(words) or words[index + 1][2].startswith("-")
            if context is None or not last_or_followed_by_option:
                continue  # prose, or an argument of some other option
        for match in matches:
            if not match.group(2):
                continue  # kernel_irqchip={expr}: not a literal value
            found.append(Setting(
                match.group(2), match.group(1), start + match.start(2), start + match.end(2), context, word,
            ))
    return found


def machines_in(text: str) -> list[tuple[str, str]]:
    """(machine type, where) for each machine the text starts: `-machine q35,...`, `-M pseries`,
    avocado's `machine:virt` tag."""
    words = WORD.findall(text)
    found = [(list_machine(word), f"{option} {word}") for option, word in zip(words, words[1:]) if option in MACHINE_OPTIONS]
    found += [(name, f"tag machine:{name}") for name in MACHINE_TAG.findall(text)]
    return [(name, origin) for name, origin in found if name]


def targets_in(text: str) -> list[tuple[str, str]]:
    """(QEMU target, where) for each target the text names: `qemu-system-aarch64`, avocado's `arch:ppc64` tag."""
    return [(name, f"qemu-system-{name}") for name in QEMU_BINARY.findall(text)] + [
        (name, f"tag arch:{name}") for name in ARCH_TAG.findall(text)
    ]
