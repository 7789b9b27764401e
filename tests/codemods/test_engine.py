"""The shared edit engine: refusals, rollback, idempotence and atomic, byte-exact writes."""

import os
import stat

from kvmlint.codemods.engine import ChangeSet, Edit, NewFile, plan, unified_diff, write

SOURCE = b"int a(void)\n{\n    return kvm_irqchip_in_kernel();\n}\n"
CALL = SOURCE.index(b"kvm_irqchip_in_kernel()")


def replace_call(path="a.c", replacement=b"kvm_async_interrupts_enabled()", title="rewrite"):
    return ChangeSet("KVM001", title, "why", edits=[Edit(path, CALL, CALL + len(b"kvm_irqchip_in_kernel()"), replacement)])


def tree(tmp_path, **files):
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


def test_applies_edits_and_new_files_and_leaves_other_files_byte_identical(tmp_path):
    root = tree(tmp_path, **{"a.c": SOURCE, "b.c": b"int b;\n"})
    change = replace_call()
    change.new_files.append(NewFile("sub/new.h", b"#ifndef X\n#define X\n#endif\n"))
    planned = plan(root, [change])
    assert planned.accepted == [change] and not planned.refused
    report = write(planned)
    assert sorted(report.written) == ["a.c", "sub/new.h"]
    assert b"kvm_async_interrupts_enabled()" in (root / "a.c").read_bytes()
    assert (root / "b.c").read_bytes() == b"int b;\n"
    assert not [p for p in root.rglob("*.kvmlint")]


def test_overlapping_change_sets_refuse_the_later_one_whole(tmp_path):
    root = tree(tmp_path, **{"a.c": SOURCE})
    first, second = replace_call(title="first"), replace_call(replacement=b"kvm_halt_in_kernel()", title="second")
    planned = plan(root, [first, second])
    assert planned.accepted == [first]
    assert "overlaps" in planned.refused[0].reason


def test_a_change_that_adds_syntax_errors_is_rolled_back(tmp_path):
    root = tree(tmp_path, **{"a.c": SOURCE})
    planned = plan(root, [replace_call(replacement=b"kvm_x(( {")])
    assert not planned.accepted
    assert "syntax errors" in planned.refused[0].reason
    assert (root / "a.c").read_bytes() == SOURCE


def test_no_edit_inside_a_region_the_parser_could_not_read(tmp_path):
    broken = b"int a(void) { return 1 +* kvm_irqchip_in_kernel() @@ ; }\n"
    root = tree(tmp_path, **{"a.c": broken})
    start = broken.index(b"@@")
    change = ChangeSet("KVM001", "t", "b", edits=[Edit("a.c", start, start + 2, b"  ")])
    assert "could not read" in plan(root, [change]).refused[0].reason


def test_applying_the_same_fix_twice_is_a_no_op(tmp_path):
    root = tree(tmp_path, **{"a.c": SOURCE})
    write(plan(root, [replace_call()]))
    once = (root / "a.c").read_bytes()
    identical = ChangeSet("KVM001", "t", "b", edits=[Edit("a.c", CALL, CALL + 30, once[CALL : CALL + 30])])
    again = plan(root, [identical])
    assert not again.accepted and "no change" in again.refused[0].reason
    assert write(again).written == []


def test_permissions_are_kept(tmp_path):
    root = tree(tmp_path, **{"a.c": SOURCE})
    os.chmod(root / "a.c", 0o750)
    write(plan(root, [replace_call()]))
    assert stat.S_IMODE((root / "a.c").stat().st_mode) == 0o750


def test_a_file_changed_since_it_was_read_is_skipped_with_its_whole_change_set(tmp_path):
    root = tree(tmp_path, **{"a.c": SOURCE, "b.c": b"int kvm_b;\n"})
    change = replace_call()
    change.edits.append(Edit("b.c", 0, 3, b"long"))
    planned = plan(root, [change])
    (root / "a.c").write_bytes(SOURCE + b"/* edited meanwhile */\n")
    report = write(planned)
    assert report.written == [] and "changed on disk" in report.skipped[0][1]
    assert (root / "b.c").read_bytes() == b"int kvm_b;\n"


def test_nothing_outside_the_root_is_written(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    escape = ChangeSet("KVM002", "t", "b", new_files=[NewFile("../evil.h", b"x")])
    planned = plan(root, [escape])
    assert "outside" in planned.refused[0].reason
    assert not (tmp_path / "evil.h").exists()


def test_an_existing_file_is_never_overwritten_as_new(tmp_path):
    root = tree(tmp_path, **{"kvm_i386.h": b"/* mine */\n"})
    planned = plan(root, [ChangeSet("KVM002", "t", "b", new_files=[NewFile("kvm_i386.h", b"x")])])
    assert "already exists" in planned.refused[0].reason


def test_unified_diff_shows_new_files_and_writes_nothing(tmp_path):
    root = tree(tmp_path, **{"a.c": SOURCE})
    change = replace_call()
    change.new_files.append(NewFile("n.h", b"int n;\n"))
    diff = unified_diff(plan(root, [change]))
    assert "-    return kvm_irqchip_in_kernel();" in diff
    assert "+    return kvm_async_interrupts_enabled();" in diff
    assert "new file mode 100644\nindex 000000000000..d8805c92f24d\n--- /dev/null\n+++ b/n.h" in diff
    assert (root / "a.c").read_bytes() == SOURCE and not (root / "n.h").exists()


def test_inserts_at_one_offset_stack_in_change_set_order_without_duplicates(tmp_path):
    root = tree(tmp_path, **{"a.h": b"#include \"kvm.h\"\nint x;\n"})
    at = len(b'#include "kvm.h"\n')
    include = Edit("a.h", at, at, b'#include "kvm_i386.h"\n')
    first = ChangeSet("KVM001", "first", "b", edits=[Edit("a.h", at, at, b"int first;\n"), include])
    second = ChangeSet("KVM001", "second", "b", edits=[Edit("a.h", at, at, b"int second;\n"), include])
    planned = plan(root, [first, second])
    assert planned.accepted == [first, second]
    write(planned)
    assert (root / "a.h").read_bytes() == (
        b'#include "kvm.h"\nint first;\n#include "kvm_i386.h"\nint second;\nint x;\n'
    )
