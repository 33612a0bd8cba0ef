"""The performance page's tables come from the stored results, and a table measured before a
later commit changed the code it measures is not shown as current: ``later_changes`` lists
exactly the commits after the measured one that touched the measured paths."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import render_performance as rp  # noqa: E402


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_later_changes_lists_only_commits_that_touch_the_measured_code(tmp_path, monkeypatch):
    repo = tmp_path / "r"
    (repo / "satclip" / "embedding").mkdir(parents=True)
    _git(tmp_path, "init", "-q", str(repo))
    _git(repo, "config", "user.email", "t@example.org")
    _git(repo, "config", "user.name", "t")

    def commit(path: str, text: str, msg: str) -> str:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
        _git(repo, "add", path)
        _git(repo, "commit", "-q", "-m", msg)
        return _git(repo, "rev-parse", "HEAD")

    measured = commit("satclip/embedding/runner.py", "a\n", "the measured code")
    monkeypatch.setattr(rp, "ROOT", repo)
    touched = rp._measures(rp.OUTPUT_CODE)
    assert rp.later_changes(measured, touched) == []
    commit("docs/x.md", "b", "docs only")
    assert rp.later_changes(measured, touched) == []
    commit("satclip/embedding/runner.py", "a\n# why it is so\n", "a comment only")
    assert rp.later_changes(measured, touched) == []
    commit("satclip/embedding/runner.py", "c\n# why it is so\n", "writer changed")
    assert [c.split(" ", 1)[1] for c in rp.later_changes(measured, touched)] == ["writer changed"]
    commit("satclip/embedding/runner.py", '"""What it writes."""\nc\n# why it is so\n', "a docstring only")
    assert [c.split(" ", 1)[1] for c in rp.later_changes(measured, touched)] == ["writer changed"]
    assert rp.later_changes("", touched) and rp.later_changes("0" * 40, touched)  # unknown: never current


def test_every_stored_result_is_rendered():
    text = rp.render()
    for name in ("vs-torchgeo-amd-avx512", "vs-torchgeo-intel-avx512"):
        model = "AMD EPYC" if "amd" in name else "Intel"
        assert f"This package against torchgeo's SatCLIP ({model}" in text
    assert "`make bench`" in text and "Commit:" in text and "Machine:" in text
