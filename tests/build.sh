#!/bin/bash
# tests/build.sh -- configure and build refinery in the source tree (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/deps.sh
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
[ -f Makefile ] || ./configure -q --enable-fault-injection "$@"
make -s -j"$(nproc)" all >/dev/null
