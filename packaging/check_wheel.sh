#!/usr/bin/env bash
# The wheel as a user gets it: for each torch (default: 2.13.0, the CPU build, and 2.14.1, the
# project's CUDA 13.0 build) a fresh venv, `pip install dist/satclip-*.whl` with no compiler on
# PATH (CC/CXX/CUDACXX point at /bin/false: a build attempt would fail), then `satclip info`
# and the op, functional, nn and checkpoint tests with SATCLIP_EXPECT_EXTENSION=1 (the compiled
# kernels must load and be the ones dispatched). Usage: bash packaging/check_wheel.sh [TORCH...]
# (make wheel-check; about 3 minutes per torch on 2 cores, venvs under $WORK, removed after).
# First the sdist (dist/satclip-*.tar.gz): complete, and refused by isolated builds in one line.
set -euo pipefail
# pip's output without the noise of this machine's missing local index folders; pip's status kept
quiet() { "$@" 2>&1 | { grep -v "WARNING: Location" || true; }; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY3=${PY3:-python3}
WORK=${WORK:-$(mktemp -d)}
trap 'rm -rf "$WORK"' EXIT
whl=$(ls "$ROOT"/dist/satclip-*.whl)
sdist=$(ls "$ROOT"/dist/satclip-*.tar.gz)
PY=${PYTHON:-$ROOT/.venv/bin/python}

# The sdist: complete (it builds, CPU part, against the project's torch with --no-build-isolation)
# and, with pip's build isolation (which hides the user's torch), refused in one line that says
# what to run instead.
echo "== sdist $(basename "$sdist"): --no-build-isolation build (CPU kernels) against $("$PY" -c 'import torch; print(torch.__version__)')"
quiet "$PY" -m pip wheel -q --no-build-isolation --no-deps -Ccmake.define.SATCLIP_CUDA=OFF -w "$WORK/sdist-wheel" "$sdist"
ls "$WORK"/sdist-wheel/satclip-*.whl
echo "== sdist with build isolation: must refuse in one line"
if "$PY" -m pip install --no-deps --target "$WORK/isolated" "$sdist" > "$WORK/isolated.log" 2>&1; then
  echo "check_wheel: an isolated build of the sdist did not refuse" >&2; exit 1
fi
grep -o "satclip: the building Python .* cannot import torch .*--no-build-isolation satclip-\*.tar.gz" "$WORK/isolated.log" | head -1 | grep . || {
  tail -20 "$WORK/isolated.log"; echo "check_wheel: the isolated build failed without the one-line refusal" >&2; exit 1; }
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.13.0 2.14.1)
TESTS=(tests/ops tests/functional tests/nn tests/checkpoint)
for v in "${versions[@]}"; do
  venv="$WORK/torch-$v"
  echo "== torch $v: fresh venv, pip install $(basename "$whl")"
  "$PY3" -m venv "$venv"
  quiet "$venv/bin/pip" install -q --upgrade pip
  quiet "$venv/bin/pip" install -q "torch==$v" pytest scipy mpmath
  quiet env PATH="$venv/bin" CC=/bin/false CXX=/bin/false CUDACXX=/bin/false "$venv/bin/pip" install -q "$whl"
  "$venv/bin/satclip" info | sed -n '1,4p'
  # The source tree's tests against the installed wheel: the checkout's files (tests, pytest's
  # settings, the sources some tests read) copied without satclip/, so the source cannot shadow
  # the installed package.
  src="$WORK/src-$v"
  mkdir -p "$src"
  git -C "$ROOT" ls-files -z --cached --others --exclude-standard -- . ':!satclip' \
    | tar -C "$ROOT" --ignore-failed-read --null -T - -cf - 2>/dev/null | tar -C "$src" -xf -
  (cd "$src" && PATH="$venv/bin" SATCLIP_EXPECT_EXTENSION=1 "$venv/bin/pytest" -q -p no:cacheprovider "${TESTS[@]}" \
     | tail -3)
  rm -rf "$venv" "$src"
done
