"""Test-session defaults.

`vocalis serve` started by a test serves with one process unless the test asks for a pool
(`--workers N`): the default (one worker per core) would make every serve test start a fleet
on a machine other tests share.

Ctrl-C tests send SIGINT to a `vocalis` subprocess. A shell that starts the suite in the
background (`make test &`, CI runners without job control) hands it SIGINT *ignored*, and an
ignored signal stays ignored across exec, so those children would never see it. Python's own
handler here is reset to the default in every child at exec, as in an interactive terminal.
"""

import os
import signal

os.environ.setdefault("VOCALIS_WORKERS", "1")
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
