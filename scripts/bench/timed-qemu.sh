#!/bin/sh
# QEMU under /usr/bin/time, for scripts/bench.sh: its user and system CPU
# seconds ("U S", all threads) go to $CPU_OUT (the last line; GNU time puts
# a "Command exited with non-zero status" line before it). The exit status
# is QEMU's, so lib.sh's isa-debug-exit decoding still works.
exec /usr/bin/time -f "%U %S" -o "${CPU_OUT:-/dev/null}" "${QEMU_REAL:?}" "$@"
