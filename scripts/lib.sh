# Shared by scripts/test and .ci/run (sourced): installing what is missing
# through the system package manager.

apt_install() { # package...
  if ! command -v apt-get >/dev/null; then
    echo "error: $* missing and no apt-get to install it; install it and re-run" >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

# What any build of Sluice needs, clippy's included: its build scripts
# compile C (SQLite, ring) and run make (jemalloc).
need_build_tools() {
  command -v cargo >/dev/null || { echo "error: cargo (Rust 1.95+) is required: https://rustup.rs" >&2; exit 1; }
  { command -v cc >/dev/null && command -v make >/dev/null; } || apt_install build-essential
}
