#!/bin/sh
# run.sh BUILD CONF - what `make run` does: starts tools/smsc-sim as the
# upstream SMSC of the default config on 127.0.0.1:2776, then nudged in the
# foreground; stopping nudged (Ctrl-C, SIGTERM) stops the simulator too.
set -eu
build=$1
conf=$2
"$build/smsc-sim" -p 2776 -u nudge -P secret --receipt-delay-ms 200 \
    --http-port 2777 >/dev/null &
sim=$!
trap 'kill "$sim" 2>/dev/null || true' EXIT INT TERM
echo "run: smsc-sim (pid $sim) on 127.0.0.1:2776, MO injection: POST http://127.0.0.1:2777/mo"
"$build/nudged" -f -c "$conf"
