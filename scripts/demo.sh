#!/usr/bin/env bash
# make demo: qgate (embedded default) + the Qualtrics simulator on this machine, one destination,
# one profile from curl to the simulator's run history. Everything listens on 127.0.0.1 only.
# Leaves both running until Ctrl-C (set DEMO_EXIT=1 to stop right after the walk-through).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
QGATE_PORT=${QGATE_PORT:-8080}
SIM_PORT=${SIM_PORT:-8090}
DATA=$(mktemp -d -t qgate-demo.XXXXXX)
ADMIN="demo-admin-key-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
QG="http://127.0.0.1:${QGATE_PORT}"
SIM="http://127.0.0.1:${SIM_PORT}"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# wait_for URL PID: the URL answers, and it is our process (PID still running) that answers.
wait_for() {
  for _ in $(seq 1 100); do
    if ! kill -0 "$2" 2>/dev/null; then echo "demo: the process for $1 exited; its log:" >&2; cat "$3" >&2; exit 1; fi
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "demo: timed out waiting for $1; log:" >&2; cat "$3" >&2; exit 1
}
# port_free PORT NAME VAR: fail clearly when something already listens there (another qgate
# would otherwise answer the walk-through).
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "demo: 127.0.0.1:$1 ($2) is already in use by another process; stop it, or choose another port: $3=NNNN make demo" >&2
    exit 1
  fi
}
port_free "$SIM_PORT" "the Qualtrics simulator" SIM_PORT
port_free "$QGATE_PORT" "qgate" QGATE_PORT

step "Start the Qualtrics simulator on $SIM (workflow WF_demo, user qgate, token sim-token)"
"$BIN/qualtrics-sim" -addr "127.0.0.1:${SIM_PORT}" >"$DATA/sim.log" 2>&1 &
pids+=($!)
wait_for "$SIM/runs/WF_demo" "$!" "$DATA/sim.log"

step "Start qgate in its embedded default (in-memory Kafka, SQLite in $DATA)"
QGATE_ADDR="127.0.0.1:${QGATE_PORT}" QGATE_DATA_DIR="$DATA" QGATE_ADMIN_KEY="$ADMIN" \
QGATE_ALLOW_PRIVATE_NETWORKS=true QGATE_LOG_LEVEL=warn "$BIN/qgate" serve >"$DATA/qgate.log" 2>&1 &
pids+=($!)
wait_for "$QG/readyz" "$!" "$DATA/qgate.log"

step "Create an operator key and an ingest key (admin: QGATE_ADMIN_KEY)"
OPERATOR=$(curl -fsS -X POST "$QG/v1/keys" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"name":"demo operator","role":"operator"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
INGEST=$(curl -fsS -X POST "$QG/v1/keys" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"name":"demo cdp","role":"ingest"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
echo "operator key: ${OPERATOR:0:12}…   ingest key: ${INGEST:0:12}…"

step "Register the destination (the simulator's JSON-event URL) for one audience"
DEST=$(curl -fsS -X POST "$QG/v1/destinations" -H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/json' -d '{
  "name": "demo workflow", "url": "'"$SIM"'/events/WF_demo", "username": "qgate", "apiToken": "sim-token",
  "identityMappings": [{"source": "Email", "target": "email"}, {"source": "ECID", "target": "external_id"}],
  "audiences": ["046456e3b-18e1-48a6-9bda-d68547861283"]}')
echo "$DEST"
DEST_ID=$(echo "$DEST" | sed -E 's/.*"id":"([^"]+)".*/\1/')

step "Test the destination: one sample profile through the real transform and client"
curl -fsS -X POST "$QG/v1/destinations/$DEST_ID/test" -H "Authorization: Bearer $OPERATOR"; echo

step "The CDP posts a profile update (the brief's sample)"
RESP=$(curl -fsS -X POST "$QG/v1/profiles" -H "Authorization: Bearer $INGEST" -H 'Content-Type: application/json' \
  --data-binary @testdata/profiles/good/brief-sample.json)
echo "$RESP"
UPDATE=$(echo "$RESP" | sed -E 's/.*"updateId":"([^"]+)".*/\1/')

step "Support follows the update to the destination (GET /v1/updates/$UPDATE)"
for _ in $(seq 1 100); do
  VIEW=$(curl -fsS "$QG/v1/updates/$UPDATE" -H "Authorization: Bearer $ADMIN" 2>/dev/null || true)
  case "$VIEW" in *'"status":"delivered"'*) break ;; esac
  sleep 0.1
done
echo "$VIEW"

step "The simulator's run history for WF_demo (what Qualtrics received)"
curl -fsS "$SIM/runs/WF_demo"; echo

step "Support asks the operator CLI (docs/cli.md): qgate deliveries search --email dave@example.com"
QGATE_URL="$QG" QGATE_API_KEY="$ADMIN" "$BIN/qgate" deliveries search --email dave@example.com

step "The destination's figures (GET /v1/destinations/$DEST_ID/stats?window=1h)"
curl -fsS "$QG/v1/destinations/$DEST_ID/stats?window=1h" -H "Authorization: Bearer $ADMIN"; echo

step "Survey watch: a Qualtrics brand on the simulator (token sim-brand-token), a connection, a webhook channel"
curl -fsS -X PUT "$SIM/_control/brands/demobrand" -H 'Content-Type: application/json' -d '{"token":"sim-brand-token"}'; echo
CONN=$(curl -fsS -X POST "$QG/v1/survey-connections" -H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/json' \
  -d '{"name":"demo brand","baseUrl":"'"$SIM"'/API/v3/","apiToken":"sim-brand-token"}')
CONN_ID=$(echo "$CONN" | sed -E 's/.*"id":"(svc_[^"]+)".*/\1/')
CHAN=$(curl -fsS -X POST "$QG/v1/notification-channels" -H "Authorization: Bearer $OPERATOR" -H 'Content-Type: application/json' \
  -d '{"name":"demo hook","kind":"webhook","url":"'"$SIM"'/_hooks/demo","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","events":["survey.request","survey.expiring","survey.stats"]}')
CHAN_ID=$(echo "$CHAN" | sed -E 's/.*"id":"(nch_[^"]+)".*/\1/')
curl -fsS -X POST "$QG/v1/survey-connections/$CONN_ID/sync" -H "Authorization: Bearer $OPERATOR" >/dev/null
ARRIVED=
for _ in $(seq 1 300); do
  HITS=$(curl -fsS "$SIM/_hooks/demo")
  case "$HITS" in *survey.stats*) ARRIVED=1; break ;; esac
  sleep 0.1
done
if [ -z "$ARRIVED" ]; then
  echo "demo: no survey.stats notification reached the webhook within 30 s; received: $HITS" >&2
  exit 1
fi
step "Signed notifications at the webhook (survey.request, survey.expiring for links expiring in 20 h, survey.stats)"
echo "$HITS" | head -c 1500; echo " …"
step "They are deliveries of the delivery engine (GET /v1/deliveries?destinationId=$CHAN_ID&status=delivered&limit=2)"
curl -fsS "$QG/v1/deliveries?destinationId=$CHAN_ID&status=delivered&limit=2" -H "Authorization: Bearer $ADMIN" | head -c 1200; echo " …"
step "Bob's active surveys (GET /v1/people/bob@example.com/surveys)"
curl -fsS "$QG/v1/people/bob@example.com/surveys" -H "Authorization: Bearer $ADMIN"; echo

if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
step "qgate: $QG (admin key $ADMIN; support page $QG/ui)   simulator: $SIM — Ctrl-C stops both"
wait
