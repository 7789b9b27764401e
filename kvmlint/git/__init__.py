"""Running git safely: file lists, diffs of a change and the index overlay, commits."""
