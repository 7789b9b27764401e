"""Stage 1, source: which files to look at, their bytes, and the facts extracted from them."""
