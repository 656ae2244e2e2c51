#!/usr/bin/env bash
# Runs ansible-test on this collection: `tools/ansible-test.sh sanity` or `tools/ansible-test.sh units`
# (further arguments go to ansible-test).
#
# ansible-test needs the collection at .../ansible_collections/ai_mesh/helm_engine/ and the
# working directory inside it, and does not follow the symlink `make collection` makes; so the
# tracked and new (not ignored) files of the work tree are copied to a temporary tree of that
# shape, and ansible-test runs there, on the Python of the venv (--local --python).
#
# Offline bootstrap: ansible-test downloads a pip bootstrap script (get-pip.py) from
# ci-files.testing.ansible.com into each sanity test's virtual environment. That host may be
# unreachable where only package registries are (PyPI); tools/get_pip_from_pypi.py, placed in
# ansible-test's cache under the name it looks for, installs pip from ensurepip and PyPI instead.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${ANSIBLE_TEST_PYTHON:-$ROOT/.venv/bin/python}
BIN=$(dirname "$PY")
python_version=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

pip_version=$("$PY" - <<'PYEOF'
from ansible_test._internal.python_requirements import get_venv_packages
class Python:
    version = ""
print(get_venv_packages(Python())["pip"])
PYEOF
)
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
cp "$ROOT/tools/get_pip_from_pypi.py" "$cache/get_pip_${pip_version//./_}.py"

work=$(mktemp -d "${TMPDIR:-/tmp}/helm-engine-ansible-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/ai_mesh/helm_engine"
mkdir -p "$dest"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -C "$dest" -xf -)

cd "$dest"
# ANSIBLE_HOME keeps ansible's own state out of the copy; the copy goes away on exit.
export ANSIBLE_HOME="$work/ansible-home"
export PATH="$BIN:$PATH"
command=$1; shift
args=()
if [[ "$command" == sanity ]]; then
  # Not collection content, so not sanity-tested: the pytest suites (pytest runs them; ansible-test
  # units runs tests/unit), the developer tools (shellcheck in `make lint`) and the benchmark,
  # none of them shipped; and the charts' templates, which are Go templates that only look like YAML.
  args+=(--exclude tests/integration/ --exclude tests/unit/ --exclude tools/ --exclude bench/ --exclude tests/charts/)
  while IFS= read -r -d '' chart_yaml; do
    args+=(--exclude "$(dirname "$chart_yaml")/templates/")
  done < <(find examples -name Chart.yaml -print0)
fi
"$BIN/ansible-test" "$command" --local --python "$python_version" --color no "${args[@]}" "$@"
