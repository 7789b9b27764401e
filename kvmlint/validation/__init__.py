"""Stage 7, validation: the proof of change sets.

Takes the code-mods' plan (change sets with the contents they write); hands
on which change sets are kept, refused or rolled back, with the reason.  The
model check (`model_check.py`) re-checks each rewritten expression with the
model; the compile check (`build_check.py`, with `--build-check`) writes the
fixes and recompiles what they touch with the build's own commands: the
compile database (`compile_database.py`), the build's dependency records
(`dependencies.py`), which units the front end alone can check
(`change_kind.py`), which commands may run (`compile_command.py`) and how
(`compile_runner.py`, `running.py`).  `outcome.py` says which findings a
fix leaves unfixed; `finding_fixes.py`, each finding's own fix as `fix`
writes it, for the reports that carry fixes.
"""
