"""benchmarks/history.py: entries recorded from pytest-benchmark JSON, the comparison judges the
in-run ratios only (a drop beyond the threshold is flagged, a slower machine is not), machines of
another kind are not compared, and the plot is written."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
spec = importlib.util.spec_from_file_location("history", ROOT / "benchmarks" / "history.py")
history = importlib.util.module_from_spec(spec)
spec.loader.exec_module(history)


def results(date, compiled_s, fallback_s, cpu="AMD EPYC", commit="abc"):
    def bench(impl, s):
        return {"group": "sh-fwd-L40-fp32", "name": f"b[{impl}]", "stats": {"median": s * 1.1, "min": s},
                "extra_info": {"impl": impl, "points": 1000}}
    return {"datetime": date, "commit_info": {"id": commit, "dirty": False},
            "machine_info": {"cpu": {"brand_raw": cpu, "count": 2}},
            "benchmarks": [bench("compiled", compiled_s), bench("fallback", fallback_s)]}


def _record(tmp_path, name, doc, kind="cpu"):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(doc))
    return history.record(p, kind, tmp_path / "hist")


def test_ratio_drop_is_flagged_absolute_slowdown_is_not(tmp_path):
    _record(tmp_path, "a", results("2026-01-01T00:00:00", 0.1, 1.0))            # 10x the fallback
    _record(tmp_path, "b", results("2026-01-02T00:00:00", 0.2, 2.0, commit="d"))  # all 2x slower: same ratio
    text, flagged = history.compare(tmp_path / "hist")
    assert flagged == 0 and "| compiled | 10,000 | 5,000 | vs fallback | 10.00 | 10.00 | +0% |" in text
    _record(tmp_path, "c", results("2026-01-03T00:00:00", 0.2, 1.0, commit="e"))  # ratio 10 -> 5
    text, flagged = history.compare(tmp_path / "hist")
    assert flagged == 1 and "REGRESSION" in text and "-50%" in text


def test_other_machine_kinds_are_not_compared(tmp_path):
    _record(tmp_path, "a", results("2026-01-01T00:00:00", 0.1, 1.0))
    _record(tmp_path, "b", results("2026-01-02T00:00:00", 0.5, 1.0, cpu="Intel Xeon"))
    text, flagged = history.compare(tmp_path / "hist")
    assert flagged == 0 and "nothing to compare yet" in text


def test_entry_fields_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    path = _record(tmp_path, "a", results("2026-01-01T00:00:00", 0.1, 1.0))
    e = json.loads(path.read_text())
    assert {"kind", "date", "commit", "machine", "versions", "benchmarks", "ratios"} <= set(e)
    assert e["machine"] == {"cpu": "AMD EPYC", "cores": 2, "gpu": None} and e["versions"]["torch"]
    _record(tmp_path, "b", results("2026-01-02T00:00:00", 0.1, 1.1))
    png = history.plot(tmp_path / "hist", tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_entry_from_several_files(tmp_path):
    a = results("2026-01-01T00:00:00", 0.1, 1.0)
    b = results("2026-01-01T00:00:00", 0.1, 1.0)
    for x in b["benchmarks"]:
        x["group"] = "sh-fwd-L10-fp32"
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    e = json.loads(history.record([tmp_path / "a.json", tmp_path / "b.json"], "gpu", tmp_path / "h").read_text())
    assert e["kind"] == "gpu" and {x["group"] for x in e["benchmarks"]} == {"sh-fwd-L40-fp32", "sh-fwd-L10-fp32"}
