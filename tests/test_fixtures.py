"""Fixture overlays: a changed file is a unified diff of its base's file, applied exactly or not at all."""

from __future__ import annotations

import pytest

from conftest import FIXTURES, apply_patch


def test_the_helpers_overlay_holds_only_what_differs_and_lays_out_whole(qemu_helpers):
    overlay = FIXTURES / "qemu-helpers"
    for patch in overlay.rglob("*.patch"):
        relpath = patch.relative_to(overlay).as_posix().removesuffix(".patch")
        assert not (overlay / relpath).exists()  # no whole copy beside its diff
        assert (qemu_helpers / relpath).read_bytes() != (FIXTURES / "qemu-2012" / relpath).read_bytes()
    assert not list(qemu_helpers.rglob("*.patch"))
    assert b"kvm_has_robust_singlestep" in (qemu_helpers / "kvm-all.c").read_bytes()


def test_a_patch_whose_context_moved_is_refused_not_guessed(tmp_path):
    target = tmp_path / "kvm.h"
    target.write_bytes(b"int a;\nint b;\nint c;\n")
    patch = tmp_path / "kvm.h.patch"
    patch.write_bytes(b"--- a/kvm.h\n+++ b/kvm.h\n@@ -2,2 +2,3 @@\n int b;\n+int b2;\n int c;\n")
    apply_patch(target, patch)
    assert target.read_bytes() == b"int a;\nint b;\nint b2;\nint c;\n"
    target.write_bytes(b"int a;\nint x;\nint b;\nint c;\n")
    with pytest.raises(ValueError, match="does not have this line here"):
        apply_patch(target, patch)
    assert target.read_bytes() == b"int a;\nint x;\nint b;\nint c;\n"


def test_a_file_without_a_final_newline_stays_so(tmp_path):
    target = tmp_path / "Makefile.objs"
    target.write_bytes(b"obj-y += a.o\nobj-y += b.o")
    patch = tmp_path / "Makefile.objs.patch"
    patch.write_bytes(b"--- a\n+++ b\n@@ -1,2 +1,2 @@\n obj-y += a.o\n-obj-y += b.o\n\\ No newline at end of file\n"
                      b"+obj-y += c.o\n\\ No newline at end of file\n")
    apply_patch(target, patch)
    assert target.read_bytes() == b"obj-y += a.o\nobj-y += c.o"
