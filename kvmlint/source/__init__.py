"""Stage 1, source: which files to look at, their bytes, and the facts extracted from them.

Takes the paths a command names (and an overlay: content to judge instead of
the disk, such as `--staged`'s index); hands on a `SourceSet` (the checkout's
root and its files, from git's list or a walk) and, per file, the picklable
facts records of `facts.py`, extracted in worker processes (`extract_all`)
and kept in the facts cache.  C files are read by `extract.py` (the syntax
tree in `c_syntax.py`), Python files by `pyextract.py`.
"""

from kvmlint.source.discover import SourceSet, discover, find_root
from kvmlint.source.facts import FileFacts
from kvmlint.source.workers import ExtractionResult, extract_all

__all__ = ["ExtractionResult", "FileFacts", "SourceSet", "discover", "extract_all", "find_root"]
