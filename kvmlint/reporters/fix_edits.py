"""Where a fix's edits fall in the lines of the file as checked, for the formats that carry fixes."""

from __future__ import annotations


def line_starts(data: bytes, offsets: list[int]) -> list[tuple[int, int]]:
    """For each of the ascending byte `offsets` into `data`: its 1-based line (lines end at `\\n`,
    as findings' lines do) and the offset where that line starts."""
    places, line, scanned = [], 1, 0
    for offset in offsets:
        line += data.count(b"\n", scanned, offset)
        scanned = offset
        places.append((line, data.rfind(b"\n", 0, offset) + 1))
    return places


def edit_places(changed) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Each edit of a FileEdits as ((line, start of that line), (line, start of that line)) of its start and end."""
    places = line_starts(changed.original or b"", [offset for edit in changed.edits for offset in (edit.start, edit.end)])
    return list(zip(places[0::2], places[1::2]))
