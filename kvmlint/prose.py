"""Plain-English pieces of commit messages and findings: architecture names
with the right article, and paragraphs wrapped the way `git commit` expects."""

from __future__ import annotations

import textwrap

ARCH_NAMES = {
    "x86": "x86", "arm": "ARM", "ppc": "PowerPC", "s390x": "s390x",
    "riscv": "RISC-V", "loongarch": "LoongArch", "mips": "MIPS",
}
# By how the name is spoken: "an x86", "an ARM", "an s390x", but "a MIPS".
VOWEL_SOUND = {"x86", "arm", "s390x"}
COMMIT_WIDTH = 72


def arch_name(arch: str) -> str:
    return ARCH_NAMES.get(arch, arch)


def article(arch: str) -> str:
    return "an" if arch in VOWEL_SOUND or arch_name(arch)[:1].lower() in "aeio" else "a"


def arch_specific(arch: str) -> str:
    """`an x86-specific`, `a PowerPC-specific`."""
    return f"{article(arch)} {arch_name(arch)}-specific"


def join_words(items: list[str], conjunction: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} {conjunction} {items[1]}"
    return f"{', '.join(items[:-1])}, {conjunction} {items[-1]}"


def wrap_message(text: str, width: int = COMMIT_WIDTH) -> str:
    """Wrap a commit message body: paragraphs are refilled, list items (`- `)
    continue under their text, other indented lines (code, tables) are kept."""
    out = []
    for paragraph in text.strip("\n").split("\n\n"):
        lines = paragraph.splitlines()
        if lines and lines[0].startswith("- "):
            items = _list_items(lines)
            out.append("\n".join(_fill(item, width, "- ", "  ") for item in items))
        elif lines and lines[0].startswith((" ", "\t")):
            out.append(paragraph)
        else:
            out.append(_fill(" ".join(line.strip() for line in lines), width))
    return "\n\n".join(out)


def _list_items(lines: list[str]) -> list[str]:
    items: list[str] = []
    for line in lines:
        if line.startswith("- ") or not items:
            items.append(line.removeprefix("- ").strip())
        else:
            items[-1] += " " + line.strip()
    return items


def _fill(text: str, width: int, first: str = "", rest: str = "") -> str:
    """Fill to `width` without an orphan word on the last line: when one is
    left, narrower widths are tried that keep the number of lines."""
    def fill(at: int) -> list[str]:
        return textwrap.wrap(
            text, at, initial_indent=first, subsequent_indent=rest,
            break_long_words=False, break_on_hyphens=False,
        )

    lines = fill(width)
    if len(lines) > 1 and len(lines[-1].split()) == 1:
        for narrower in range(width - 1, width * 2 // 3, -1):
            candidate = fill(narrower)
            if len(candidate) > len(lines):
                break
            if len(candidate[-1].split()) > 1:
                lines = candidate
                break
    return "\n".join(lines)
