# Shared by scripts/demo and scripts/test: create .venv once, then install the project into it.
PYTHON="${PYTHON:-python3}"
VENV_PY=".venv/bin/python"

ensure_venv() {
  if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "error: $PYTHON is missing or older than 3.10; set PYTHON=/path/to/python3.10+" >&2
    exit 2
  fi
  if [ ! -x "$VENV_PY" ]; then
    "$PYTHON" -m venv .venv
    "$VENV_PY" -m pip install --quiet --upgrade pip
  fi
  "$VENV_PY" -m pip install --quiet --disable-pip-version-check -e "$1"
}
