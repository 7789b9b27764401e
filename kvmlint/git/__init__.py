"""Running git safely, below every stage: no configuration of the tree's can make git run a program.

`run.py` runs git with the repository's programs switched off; `diffs.py`
reads which lines a change adds and the index's content (`--staged`,
`--diff-base`); `worktree.py` the files the work tree changed against HEAD;
`commits.py` checks for a clean checkout, builds `fix --commit`'s commits and
finds the subject prefixes of the tree's history.  Nothing here imports a
stage: callers pass in the contents and paths.
"""
