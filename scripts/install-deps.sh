#!/usr/bin/env bash
# Installs the Debian packages actorserve builds and tests with, when missing. Idempotent;
# runs as root or through sudo. The CUDA toolkit (/usr/local/cuda) is optional and never
# installed here.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git ca-certificates
  libcaf-dev libmsgpack-cxx-dev libspdlog-dev libcpp-httplib-dev libssl-dev zlib1g-dev
  libbrotli-dev catch2 nlohmann-json3-dev libpcre2-dev libxxhash-dev libcli11-dev
  prometheus-cpp-dev libutf8proc-dev
  python3 python3-jinja2 curl nodejs npm iproute2 util-linux procps openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere (e.g. NodeSource); accept working binaries.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
clean=(); for p in "${missing[@]}"; do [ -n "$p" ] && clean+=("$p"); done
missing=("${clean[@]+"${clean[@]}"}")

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
