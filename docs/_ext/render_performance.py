"""Renders the performance page's tables from ``benchmarks/results/*.json`` (never typed by hand):
``python docs/_ext/render_performance.py OUT.md``; ``conf.py`` runs it on every build.
``python docs/_ext/render_performance.py --readme`` rewrites the README's headline table (between
its ``vs-torchgeo`` markers) from the same JSON; ``tests/docs/test_readme.py`` checks it is current.

Beside each table: the machine (CPU model, cores, the flags that pick kernels), the date, the
commit the figures were measured on and the command that made them. A table is shown as current
only when no commit since its own changed the code it measures (the paths in ``MEASURES``);
otherwise it goes to "Earlier results" with the commits that came after it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))

from report import main as report_table  # noqa: E402  (benchmarks/report.py: one renderer for both)

KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
ENCODER_CODE = ("csrc/common", "csrc/cpu", "csrc/glue", "satclip/ops", "satclip/nn", "satclip/functional.py",
                "satclip/options.py")
OUTPUT_CODE = ("satclip/embedding", "csrc/common/quantize_int8.h", "csrc/cpu/quantize_int8")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def _measures(paths: tuple[str, ...], exclude: tuple[str, ...] = ()):
    def touched(name: str) -> bool:
        return name.startswith(paths) and not any(x in name for x in exclude)
    return touched


def _python_code(source: str) -> str | None:
    """A Python file's code without its docstrings and comments (its AST), or None if unparsable."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _comments_only(sha: str, files: list[str]) -> bool:
    """Whether commit ``sha`` changed only comments, blank lines or (Python) docstrings in ``files``:
    # and // lines; a Python file whose code (AST without docstrings) is the same on both sides."""
    rest = []
    for f in files:
        if f.endswith(".py"):
            code = _python_code(_git("show", f"{sha}^:{f}"))
            if code is not None and code == _python_code(_git("show", f"{sha}:{f}")):
                continue
        rest.append(f)
    if not rest:
        return True
    diff = _git("show", "--format=", "-U0", sha, "--", *rest)
    changed = [ln[1:].strip() for ln in diff.splitlines()
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return bool(diff) and all(not c or c.startswith(("#", "//")) for c in changed)


def later_changes(commit: str, touched) -> list[str]:
    """Commits after ``commit`` that changed the code the table measures (``[]``: it is current);
    a commit that only edited comments there does not count."""
    if not commit:
        return ["(the commit it was measured on is not recorded)"]
    log = _git("log", "--format=@%H %s", "--name-only", f"{commit}..HEAD")
    if not log and not _git("cat-file", "-t", commit).strip():
        return [f"(commit {commit[:10]} is not in this checkout's history)"]
    out, current, files = [], None, []
    for line in log.splitlines() + ["@"]:
        if line.startswith("@"):
            if current and files and not _comments_only(current.split(" ", 1)[0], files):
                sha, _, subject = current.partition(" ")
                out.append(f"{sha[:7]} {subject}"[:90])
            current, files = line[1:], []
        elif line.strip() and touched(line.strip()):
            files.append(line.strip())
    return out


def file_commit(path: Path) -> str:
    return _git("log", "-1", "--format=%H", "--", str(path.relative_to(ROOT))).strip()


def header(machine: str, date: str, commit: str, command: str, dirty: bool = False) -> str:
    c = f"`{commit[:10]}`" + (" (with uncommitted changes)" if dirty else "") if commit else "not recorded"
    return f"Machine: {machine}. Date: {date}. Commit: {c}. Command: `{command}`.\n"


def pytest_benchmark_section(path: Path, title: str, command: str, touched) -> tuple[str, list[str]]:
    data = json.loads(path.read_text())
    mi, ci = data.get("machine_info", {}), data.get("commit_info", {})
    cpu = mi.get("cpu", {})
    flags = [f for f in KERNEL_FLAGS if f in cpu.get("flags", [])]
    machine = f"{cpu.get('brand_raw', '?')}, {cpu.get('count', '?')} logical CPUs ({', '.join(flags) or 'no AVX2'})"
    table = report_table(str(path)).split("\n", 2)[2]  # without report.py's own heading
    body = f"### {title}\n\n" + header(machine, data.get("datetime", "?")[:10], ci.get("id", ""), command,
                                        ci.get("dirty", False)) + "\n" + table
    return body, later_changes(ci.get("id", ""), touched)


def vs_torchgeo_table(d: dict) -> list[str]:
    lines = ["| L | precision | ours (points/s) | torchgeo (points/s) | x torchgeo | ours / ceiling | max rel. error ours / torchgeo |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for L, g in d["degrees"].items():
        s, e = g["seconds"], g["errors"]
        for prec, peer in (("float32", "torchgeo float32"), ("bf16", "torchgeo autocast(bf16)"),
                           ("float64", "torchgeo float64")):
            ours = s[f"ours {prec}"]
            lines.append(f"| {L} | {prec} | {d['n'] / ours:,.0f} | {d['n'] / s[peer]:,.0f} | {s[peer] / ours:.2f}x | "
                         f"{s[f'ceiling {prec}'] / ours:.2f} | {e[f'ours {prec}']:.1e} / {e[peer]:.1e} |")
    return lines


def vs_torchgeo_section(path: Path) -> tuple[str, list[str]]:
    d = json.loads(path.read_text())
    cpu = d["cpu"]
    machine = f"{cpu['model']}, {cpu['threads']} threads ({', '.join(cpu['flags'])})"
    commit = file_commit(path)
    lines = [f"### This package against torchgeo's SatCLIP ({cpu['model']}, {', '.join(cpu['flags'])})", "",
             header(machine, d["date"], commit, "python benchmarks/vs_torchgeo.py"),
             f"{d['n']:,} random points, best of {d['rounds']} rounds, interleaved in one process; peer: {d['peer']} "
             "(same weights; bf16 under `torch.autocast`); ceiling: the bare GEMM chain of the same shapes in the "
             "same precision.", ""] + vs_torchgeo_table(d)
    return "\n".join(lines) + "\n", later_changes(commit, _measures(ENCODER_CODE, ("quantize",)))


README_TABLE = RESULTS / "vs-torchgeo-amd-avx512.json"
START, END = "<!-- vs-torchgeo:start -->", "<!-- vs-torchgeo:end -->"


def readme_with_table(readme: str) -> str:
    """The README with its headline table rendered from README_TABLE (between START and END)."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    d = json.loads(README_TABLE.read_text())
    cpu = d["cpu"]
    caption = (f"{cpu['model']} ({', '.join(cpu['flags'])}), {cpu['threads']} threads, {d['date']}, "
               f"{d['n']:,} random points, best of {d['rounds']}, points per second:")
    table = "\n".join([caption, ""] + vs_torchgeo_table(d))
    return f"{head}{START}\n{table}\n{END}{tail}"


def product_sizes_section(path: Path) -> tuple[str, list[str]]:
    d = json.loads(path.read_text())
    m = d["machine"]
    machine = f"{m['cpu']}, {m['cores']} logical CPUs ({', '.join(m['flags'])})"
    lines = [f"### Output sizes and writer times per format and compression", "",
             header(machine, d["date"], d["commit"], d["command"], d.get("dirty", False)),
             f"A {d['step']}-degree grid ({d['points']:,} points, 256-d) in {d['chunks']} chunks, written by the "
             "stand-in encoder of `benchmarks/bench_pipeline.py` (it costs nothing, so the time is the output "
             "path's: convert, write, sync, commit); best of 2 runs.", "",
             "| format | dtype | compression | size (MB) | vs uncompressed | run (s) | per chunk (ms) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    base: dict = {}
    for r in d["rows"]:
        key = (r["format"], r["dtype"])
        base.setdefault(key, r["bytes"])
        fin = f" (GDAL pass {r['finalise_seconds']:.1f})" if r.get("finalise_seconds") else ""
        lines.append(f"| {r['format']} | {r['dtype']} | {r['compression']} | {r['bytes'] / 1e6:,.1f} | "
                     f"{r['bytes'] / base[key]:.2f} | {r['seconds']:.2f}{fin} | {r['seconds'] / d['chunks'] * 1e3:.1f} |")
    return "\n".join(lines) + "\n", later_changes(d["commit"], _measures(OUTPUT_CODE))


def sections() -> list[tuple[str, list[str]]]:
    out = []
    for p in sorted(RESULTS.glob("vs-torchgeo-*.json")):
        out.append(vs_torchgeo_section(p))
    specs = [("cpu.json", "`make bench`: kernels, encoders, embedder, training (CPU)", "make bench",
              _measures(ENCODER_CODE + OUTPUT_CODE + ("satclip/training",), ())),
             ("pipeline-cpu.json", "The output path against a plain write of the same bytes",
              "pytest -c benchmarks/pytest.ini benchmarks/bench_pipeline.py", _measures(OUTPUT_CODE)),
             ("train-cpu.json", "Training steps", "pytest -c benchmarks/pytest.ini benchmarks/bench_train.py",
              _measures(ENCODER_CODE + ("satclip/training",), ("quantize",)))]
    for name, title, command, touched in specs:
        if (RESULTS / name).exists():
            out.append(pytest_benchmark_section(RESULTS / name, title, command, touched))
    if (RESULTS / "product-sizes.json").exists():
        out.append(product_sizes_section(RESULTS / "product-sizes.json"))
    return out


def render() -> str:
    current, earlier = [], []
    for body, later in sections():
        if later:
            earlier.append(body + "\nMeasured before these commits changed the code it measures:\n\n"
                           + "\n".join(f"- {c}" for c in later[:8])
                           + (f"\n- ... and {len(later) - 8} more" if len(later) > 8 else "") + "\n")
        else:
            current.append(body)
    text = "## Current results\n\n" + ("\n".join(current) if current else "None: every stored result predates "
                                       "a change to the code it measures (run `make bench`).\n")
    if earlier:
        text += ("\n## Earlier results\n\nThese predate a change to the code they measure: history, not a claim "
                 "about the current code.\n\n" + "\n".join(earlier))
    return text


if __name__ == "__main__":
    if sys.argv[1] == "--readme":
        readme = ROOT / "README.md"
        readme.write_text(readme_with_table(readme.read_text()))
    else:
        Path(sys.argv[1]).write_text(render())
