"""`make chromium` (run by `make test` before pytest): installs Debian chromium when missing.

Run against fake `id`, `apt-get` and `sudo` on a PATH of their own, so each case is exact and
nothing is installed: as root it calls apt-get directly; as a user with passwordless sudo it
goes through `sudo -n`; as a user without it (or without apt-get) it fails with one clear line
instead of a password prompt or "sudo: command not found".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_support import REPO

MAKE = shutil.which("make")
MAKE_ERROR = re.compile(r"^make(\[\d+\])?: \*\*\*")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def fake_bin(tmp_path: Path, *, uid: int, apt: bool = True, sudo: str | None = None) -> Path:
    """A PATH holding only what the recipe may call; every fake logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in ("env", "true"):
        real = shutil.which(tool)
        assert real is not None
        (bin_dir / tool).symlink_to(real)
    scripts = {"id": f'[ "$1" = -u ] && echo {uid}\n'}
    if apt:
        scripts["apt-get"] = f'echo "apt-get $* DEBIAN_FRONTEND=$DEBIAN_FRONTEND" >> {log}\n'
    if sudo == "passwordless":
        scripts["sudo"] = f'echo "sudo $*" >> {log}\n[ "$1" = -n ] && shift\nexec "$@"\n'
    elif sudo == "password":
        scripts["sudo"] = 'echo "sudo: a password is required" >&2\nexit 1\n'
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)
    return bin_dir


def make_chromium(tmp_path: Path, bin_dir: Path, chromium: str) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    # Run as a top-level make even under `make test` (no inherited level or flags).
    outer = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")
    env = {k: v for k, v in os.environ.items() if k not in outer}
    env["PATH"] = str(bin_dir)
    return subprocess.run(
        [MAKE, "-s", "--no-print-directory", "chromium", f"CHROMIUM={chromium}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def said(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the recipe printed on stderr, without make's own "*** Error" trailer."""
    return [line for line in result.stderr.splitlines() if not MAKE_ERROR.match(line)]


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_present_chromium_is_left_alone(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path, uid=1000)
    present = shutil.which("bash")
    assert present is not None
    result = make_chromium(tmp_path, bin_dir, present)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert calls(tmp_path) == []


def test_root_installs_with_apt_get(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path, uid=0)
    result = make_chromium(tmp_path, bin_dir, str(tmp_path / "missing"))
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path) == [
        "apt-get update -qq DEBIAN_FRONTEND=noninteractive",
        "apt-get install -y -qq chromium DEBIAN_FRONTEND=noninteractive",
    ]


def test_user_with_passwordless_sudo_installs_through_it(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path, uid=1000, sudo="passwordless")
    result = make_chromium(tmp_path, bin_dir, str(tmp_path / "missing"))
    assert result.returncode == 0, result.stderr
    made = calls(tmp_path)
    assert "apt-get install -y -qq chromium DEBIAN_FRONTEND=noninteractive" in made
    assert made[0] == "sudo -n true"
    assert any(c.startswith("sudo -n env DEBIAN_FRONTEND=noninteractive apt-get") for c in made)


@pytest.mark.parametrize("sudo", [None, "password"])
def test_user_without_root_gets_one_clear_line(tmp_path: Path, sudo: str | None) -> None:
    bin_dir = fake_bin(tmp_path, uid=1000, sudo=sudo)
    result = make_chromium(tmp_path, bin_dir, str(tmp_path / "missing"))
    assert result.returncode != 0
    assert said(result) == [
        f"make: {tmp_path / 'missing'} is missing and installing it needs root: "
        "run 'sudo apt-get install chromium' once, or make as root"
    ]
    assert not any(c.startswith("apt-get") for c in calls(tmp_path))


def test_no_apt_get_is_one_clear_line(tmp_path: Path) -> None:
    bin_dir = fake_bin(tmp_path, uid=0, apt=False)
    result = make_chromium(tmp_path, bin_dir, str(tmp_path / "missing"))
    assert result.returncode != 0
    [line] = said(result)
    assert "there is no apt-get here" in line
