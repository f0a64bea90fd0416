# Shared by scripts/start, scripts/test and .ci/run (sourced, not run).
# ensure_uv: put `uv` on PATH, installing it with pip when it is missing.
# use_system_python: have uv build `.venv` on the operating system's optimised CPython 3.11.

ensure_uv() {
    if command -v uv >/dev/null 2>&1; then
        return 0
    fi
    local python
    python="$(command -v python3 || command -v python || true)"
    if [ -z "$python" ]; then
        echo "error: Python 3.11 is needed (python3 not found)." >&2
        return 1
    fi
    local user_bin
    user_bin="$("$python" -c 'import site, os; print(os.path.join(site.getuserbase(), "bin"))')"
    if [ -x "$user_bin/uv" ]; then
        export PATH="$user_bin:$PATH"
        return 0
    fi
    if ! "$python" -m pip --version >/dev/null 2>&1; then
        echo "error: uv is missing and pip is not available to install it." >&2
        echo "       Install pip (Debian/Ubuntu: sudo apt-get install python3-pip) or uv" >&2
        echo "       (https://docs.astral.sh/uv/getting-started/installation/), then retry." >&2
        return 1
    fi
    echo "Installing uv with pip…" >&2
    if [ -n "${VIRTUAL_ENV:-}" ]; then
        "$python" -m pip install --quiet uv
    else
        # Debian's Python refuses plain user installs (PEP 668); uv is a self-contained
        # binary, so installing it into the user's site is harmless.
        "$python" -m pip install --quiet --user uv 2>/dev/null \
            || "$python" -m pip install --quiet --user --break-system-packages uv
        export PATH="$user_bin:$PATH"
    fi
    command -v uv >/dev/null 2>&1 || {
        echo "error: uv was installed but is not on PATH." >&2
        return 1
    }
}

# use_system_python: build `.venv` on the operating system's own CPython 3.11 when there is one
# and UV_PYTHON does not name another interpreter. Debian and Ubuntu compile theirs with
# profile-guided and link-time optimisation; a CPython built from source with its defaults (as
# pyenv and asdf build it) has neither, and the whole system then spends 10-15 % more CPU on
# every DAG node and request (docs/operations.md, "Interpreter"). uv rebuilds an existing
# `.venv` made with another interpreter. SYSTEM_PYTHON names the candidate (for tests).
use_system_python() {
    if [ -n "${UV_PYTHON:-}" ]; then
        return 0
    fi
    local system_python="${SYSTEM_PYTHON:-/usr/bin/python3.11}"
    if [ -x "$system_python" ] && "$system_python" -c 'import ctypes, sqlite3, ssl' >/dev/null 2>&1; then
        export UV_PYTHON="$system_python"
    fi
}
