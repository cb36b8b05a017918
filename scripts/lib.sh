# Shared by scripts/up, scripts/test and scripts/bench: install what is missing, build.
# Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACKAGES=(build-essential cmake ninja-build ccache pkg-config libboost1.81-all-dev libhiredis-dev
          libspdlog-dev libprotobuf-dev protobuf-compiler doctest-dev redis-server redis-sentinel redis-tools libssl-dev openssl
          haproxy python3-matplotlib)  # haproxy: scripts/up --fleet; python3-matplotlib: the soak's chart

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# apt_install PACKAGE...: install them from Debian (nothing when none are given).
apt_install() {
  [ $# -gt 0 ] || return 0
  say "installing missing packages: $*"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # all at once; if that fails (one package's dependencies can hold the others back), one by one,
  # so that the one that cannot be installed is named
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null && return 0
  local p
  for p in "$@"; do
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$p" >/dev/null ||
      { echo "could not install $p" >&2; return 1; }
  done
}

ensure_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  apt_install ${missing[@]+"${missing[@]}"}
}

# The web tests' browser and runtime: Debian's Chromium (and an emoji font), Node.js and npm (the machine may have
# its own node already), then playwright-core and axe-core from the npm registry, pinned by the lock file.
ensure_web_test_tools() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # so that an emoji in a chat renders in the screenshots instead of an empty box
  dpkg-query -W -f='${Status}' fonts-noto-color-emoji 2>/dev/null | grep -q "install ok installed" ||
    missing+=(fonts-noto-color-emoji)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  apt_install ${missing[@]+"${missing[@]}"}
  npm_ci_pinned tests/web
}

# npm_ci_pinned DIR: `npm ci` in DIR (relative to the root) when a package its package.json pins is
# missing or at another version (all of them on a fresh clone); nothing otherwise.
npm_ci_pinned() {
  local stale
  stale=$(node -e '
    const dir = process.argv[1];
    const version = (name) => { try { return require(`${dir}/node_modules/${name}/package.json`).version; } catch { return ""; } };
    const pinned = Object.entries(require(`${dir}/package.json`).devDependencies);
    console.log(pinned.filter(([name, v]) => version(name) !== v).map(([name]) => name).join(" "));
  ' "$ROOT/$1")
  if [ -n "$stale" ]; then
    say "installing $stale ($1)"
    (cd "$ROOT/$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# deploy_tests' tools, so that they run offline: systemd-analyze (Debian's systemd; it needs no
# running systemd), Node.js, and the Containerfile linter and Kubernetes schemas from the npm
# registry, pinned by tests/deploy/package-lock.json.
ensure_deploy_test_tools() {
  local missing=()
  command -v systemd-analyze >/dev/null || missing+=(systemd)
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  apt_install ${missing[@]+"${missing[@]}"}
  npm_ci_pinned tests/deploy
}

export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/warmline-ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"

# configure DIR [cmake args...]: configure a build directory once.
configure() {
  local dir="$1"; shift
  if [ ! -f "$ROOT/$dir/build.ninja" ]; then
    cmake -S "$ROOT" -B "$ROOT/$dir" -G Ninja "$@" >/dev/null
  fi
}

# build DIR [cmake args...]: configure once, then build everything.
build() {
  configure "$@"
  cmake --build "$ROOT/$1" -j "$(nproc)"
}

# build_tests DIR [cmake args...]: configure once, then build only the test binaries (and the
# services they start); the load generator and the benchmarks are left out.
build_tests() {
  configure "$@"
  cmake --build "$ROOT/$1" -j "$(nproc)" --target common_tests matchmaker_tests relay_tests system_tests sentinel_tests cluster_tests web_tests
}

# wait_ready OUTFILE NAME HINT: wait (up to 10 s) for a service's READY line in OUTFILE; exit
# with "the NAME did not start; HINT" if it does not come.
wait_ready() {
  for _ in $(seq 100); do grep -q READY "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "the $2 did not start; $3" >&2
  exit 1
}

# A free loopback TCP port at or above $1.
free_port() {
  local p="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
