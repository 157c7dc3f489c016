"""Test-session defaults.

`vocalis serve` started by a test serves with one process unless the test asks for a pool
(`--workers N`): the default (one worker per core) would make every serve test start a fleet
on a machine other tests share.
"""

import os

os.environ.setdefault("VOCALIS_WORKERS", "1")
