"""Commit-message prose: articles before architecture names, wrapping without orphans."""

from kvmlint.prose import arch_specific, wrap_message


def test_articles_follow_how_the_name_is_spoken():
    assert [arch_specific(a) for a in ("x86", "arm", "s390x", "ppc", "mips", "riscv")] == [
        "an x86-specific", "an ARM-specific", "an s390x-specific", "a PowerPC-specific", "a MIPS-specific",
        "a RISC-V-specific",
    ]


def test_paragraphs_are_refilled_without_an_orphan_word_and_lists_hang_under_their_text():
    text = ("word " * 14 + "end.").strip()  # plain filling leaves "end." alone on line 2
    wrapped = wrap_message(text + "\n\n- " + "item " * 20 + "\n\n    code()  stays")
    paragraph, items, code = wrapped.split("\n\n")
    lines = paragraph.splitlines()
    assert all(len(line) <= 72 for line in lines) and len(lines[-1].split()) > 1
    assert " ".join(lines) == text
    assert items.startswith("- item") and all(line.startswith("  item") for line in items.splitlines()[1:])
    assert code == "    code()  stays"
