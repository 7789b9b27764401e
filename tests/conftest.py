"""The suite's runs keep their kvmlint cache in one temporary folder, never inside the fixture trees."""

import os
import tempfile

os.environ.setdefault("KVMLINT_CACHE_DIR", tempfile.mkdtemp(prefix="kvmlint-test-cache-"))
