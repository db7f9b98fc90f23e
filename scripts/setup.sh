#!/usr/bin/env bash
# Installs what profagent needs to build, test and run on Debian 12. Idempotent: packages already
# present are not reinstalled, and apt is only asked when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache git pkg-config
  libtorch-dev libopenblas0-pthread           # LibTorch; OpenBLAS or every fp32 figure is ~40x off
  libboost-dev libboost-filesystem-dev         # Boost.DLL (plugins), Asio/Beast (HTTP)
  zlib1g-dev                                   # gzip IDX datasets
  libyaml-cpp-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libssl-dev
  doctest-dev
  python3 python3-torch python3-torchvision    # exporting real torchvision models as fixtures
  python3-cryptography                         # the LLM tests' TLS CA and certificates (tests/support/make_test_certs.py)
  dataset-fashion-mnist                        # real data for accuracy
  libstb-dev                                   # stb_image: JPEG/PNG decoding for ImageFolder datasets
)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
