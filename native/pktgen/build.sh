#!/bin/sh
# Builds the native packet generator next to its source: native/pktgen/build/pktgen.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$here/build"
${CC:-cc} -O2 -Wall -Wextra -std=c11 -o "$here/build/pktgen" "$here/pktgen.c"
