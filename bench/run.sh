#!/usr/bin/env bash
# Runs ../shared/bench/awsbench.py against Virga (release build) and moto_server in one
# go and leaves the JSON lines in bench/out/. Usage: bench/run.sh [awsbench args...]
# e.g. bench/run.sh --only s3 --seconds 5
set -euo pipefail
cd "$(dirname "$0")/.."
AWSBENCH=${AWSBENCH:-../shared/bench/awsbench.py}
mkdir -p bench/out
cargo build --release --quiet
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
stamp=$(date -u +%Y%m%dT%H%M%SZ)
echo "== virga"
python3 "$AWSBENCH" --endpoint http://127.0.0.1:4599 \
  --launch "$PWD/target/release/virga serve --port 4599 --data-dir $DATA --log warn" \
  --jsonl "bench/out/virga-$stamp.jsonl" "$@"
if command -v moto_server >/dev/null; then
  echo "== moto_server"
  python3 "$AWSBENCH" --endpoint http://127.0.0.1:5123 \
    --launch "moto_server -H 127.0.0.1 -p 5123" \
    --jsonl "bench/out/moto-$stamp.jsonl" "$@"
fi
echo "== startup (process start to first answered request)"
python3 bench/startup.py "$PWD/target/release/virga"
