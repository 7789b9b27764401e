"""A one-line progress counter on stderr, for people watching a terminal.

Shown only when stderr is a terminal outside CI, and only once a run has
lasted long enough to be worth it, so quick runs and logs stay clean.
"""

from __future__ import annotations

import os
import sys
import time

SHOW_AFTER_SECONDS = 1.0
REDRAW_EVERY_SECONDS = 0.1
CLEAR_LINE = "\r\033[K"


def wanted(stream=sys.stderr) -> bool:
    return stream.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


class Progress:
    """Call with (done, total) as work finishes; `close()` wipes the line."""

    def __init__(self, label: str, stream=sys.stderr):
        self.label = label
        self.stream = stream
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.started < SHOW_AFTER_SECONDS or now - self.drawn_at < REDRAW_EVERY_SECONDS:
            return
        self.drawn_at, self.shown = now, True
        self.stream.write(f"{CLEAR_LINE}kvmlint: {self.label} {done}/{total} files")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
