# Shared by scripts/test and scripts/run-local: the AWS environment both SDKs need to talk to a
# local moto server, and starting that server on a free loopback port.
# shellcheck shell=bash

TOOLS="${PUENTE_TOOLS:-$PWD/.tools}"

# Dummy credentials, a region, and no EC2 metadata probing: nothing here may reach AWS.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_SESSION_TOKEN=test
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export SAM_CLI_TELEMETRY=0 CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

free_port() {
  python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# Starts moto in server mode; exports AWS_ENDPOINT_URL and MOTO_PID. The caller traps cleanup.
start_moto() {
  local port log
  port=$(free_port)
  log="${PUENTE_LOG_DIR:-${TMPDIR:-/tmp}}/puente-moto-$port.log"
  # Through scripts/moto_server.py: moto with DynamoDB's per-item atomicity (see there).
  "$TOOLS/moto/bin/python" "$(dirname "${BASH_SOURCE[0]}")/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
      export AWS_ENDPOINT_URL="http://127.0.0.1:$port" MOTO_PID
      echo "moto listening on $AWS_ENDPOINT_URL (log: $log)"
      return 0
    fi
    sleep 0.1
  done
  echo "moto did not start; see $log" >&2
  return 1
}

stop_moto() {
  [ -n "${MOTO_PID:-}" ] && kill "$MOTO_PID" 2>/dev/null || true
}
