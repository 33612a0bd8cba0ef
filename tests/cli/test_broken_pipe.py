"""`satclip info | head` (a reader that stops early) ends quietly with status 0, not with a
BrokenPipeError traceback."""

import os
import subprocess
import sys
from pathlib import Path


def test_info_into_a_closed_pipe():
    exe = Path(sys.executable).parent / "satclip"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", f"'{exe}' info | head -n 1"], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, SATCLIP_DISABLE_EXTENSION="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert len(proc.stdout.splitlines()) == 1
