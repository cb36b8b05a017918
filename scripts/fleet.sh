# scripts/up --fleet: a fleet on one box. Redis under Sentinel (a primary with AOF, one replica,
# three sentinels), three matchmakers, three relays and the web app, with HAProxy as the one
# front door; every service drains for HAProxy on SIGTERM and is started again when it exits, so
# a rolling restart by hand is one SIGTERM at a time (docs/operations.md, "Running a fleet on one
# box"). Sourced by scripts/up once the build is done and the ticket secret exported; not run.

FLEET_DIR="$VAR/fleet"
FLEET_RUN="$FLEET_DIR/run"
FLEET_LOG="$FLEET_DIR/log"
mkdir -p "$FLEET_DIR/redis-1" "$FLEET_DIR/redis-2" "$FLEET_RUN" "$FLEET_LOG"
rm -f "$FLEET_RUN"/*.pid

# HAProxy asks every /readyz this often and takes a server out after two failures; a service
# says "draining" for a little longer than that before it closes its WebSockets.
CHECK_MS=500
DRAIN_MS=1500
MASTER=warmline
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

# Stop the front door and the services first (they drain at once: a second signal, from their
# supervisor, cuts the drain short), then the sentinels, so none fails over, then Redis.
SERVICE_PIDS=() SENTINEL_PIDS=() REDIS_PIDS=()
stop_all() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
fleet_cleanup() {
  trap - INT TERM EXIT
  say "stopping"
  stop_all ${SERVICE_PIDS[@]+"${SERVICE_PIDS[@]}"}
  stop_all ${SENTINEL_PIDS[@]+"${SENTINEL_PIDS[@]}"}
  stop_all ${REDIS_PIDS[@]+"${REDIS_PIDS[@]}"}
}
trap fleet_cleanup INT TERM EXIT

# Ports: each group from its own base, the next free one each time.
front=$(free_port "${WARMLINE_WEB_PORT:-8080}")
stats=$(free_port 8404)
web=$(free_port 8180)
mm=() relay=() sentinel=()
p=8189; for _ in 1 2 3; do p=$(free_port $((p + 1))); mm+=("$p"); done
p=8289; for _ in 1 2 3; do p=$(free_port $((p + 1))); relay+=("$p"); done
p=26389; for _ in 1 2 3; do p=$(free_port $((p + 1))); sentinel+=("$p"); done
redis1=$(free_port 6390)
redis2=$(free_port $((redis1 + 1)))

# start_redis NAME PORT [flags...]: a redis-server with AOF, its data in var/fleet/NAME.
start_redis() {
  local name="$1" port="$2"; shift 2
  redis-server --port "$port" --bind 127.0.0.1 --dir "$FLEET_DIR/$name" --appendonly yes \
    --appendfsync everysec --save "" --daemonize no --logfile "$FLEET_LOG/$name.log" \
    --repl-diskless-sync-delay 0 --maxmemory "${WARMLINE_REDIS_MAXMEMORY:-1gb}" --maxmemory-policy noeviction "$@" &
  REDIS_PIDS+=($!)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis-server $name did not start; see var/fleet/log/$name.log" >&2
  exit 1
}

# The first data directory always starts as the primary: after a failover in an earlier run,
# writes that only reached the other one are replaced by this one's data.
say "starting Redis under Sentinel: primary 127.0.0.1:$redis1, replica 127.0.0.1:$redis2 (data in var/fleet/, AOF on)"
start_redis redis-1 "$redis1"
start_redis redis-2 "$redis2" --replicaof 127.0.0.1 "$redis1"
for _ in $(seq 100); do
  redis-cli -p "$redis2" info replication | grep -q master_link_status:up && break
  sleep 0.1
done
redis-cli -p "$redis2" info replication | grep -q master_link_status:up ||
  { echo "the replica did not sync; see var/fleet/log/redis-2.log" >&2; exit 1; }

# Sentinels rewrite their config, so each run writes a fresh one for this run's ports.
for i in 0 1 2; do
  dir="$FLEET_DIR/sentinel-$((i + 1))"
  mkdir -p "$dir"
  cat > "$dir/sentinel.conf" <<CONF
port ${sentinel[i]}
bind 127.0.0.1
daemonize no
dir $dir
logfile $FLEET_LOG/sentinel-$((i + 1)).log
sentinel monitor $MASTER 127.0.0.1 $redis1 2
sentinel down-after-milliseconds $MASTER 3000
sentinel failover-timeout $MASTER 10000
sentinel parallel-syncs $MASTER 1
CONF
  redis-sentinel "$dir/sentinel.conf" &
  SENTINEL_PIDS+=($!)
done
for port in "${sentinel[@]}"; do
  for _ in $(seq 100); do
    redis-cli -p "$port" sentinel get-master-addr-by-name "$MASTER" 2>/dev/null | grep -q . && break
    sleep 0.1
  done
done

REDIS_URL="redis-sentinel://127.0.0.1:${sentinel[0]},127.0.0.1:${sentinel[1]},127.0.0.1:${sentinel[2]}/$MASTER"
export WARMLINE_REDIS_URL="$REDIS_URL"
export WARMLINE_CATALOGUE="$ROOT/deploy/catalogue.json"
export WARMLINE_DRAIN_DELAY_MS="$DRAIN_MS"
# every client comes through HAProxy on loopback: its X-Forwarded-For names the client, whose
# address the per-address limits count
export WARMLINE_TRUSTED_PROXIES=127.0.0.1
# browsers reach everything through the front door, so only its pages may open the WebSockets
export WARMLINE_ALLOWED_ORIGINS="http://localhost:$front,http://127.0.0.1:$front"
# on one box, for trying things by hand: /metrics and /readyz's details on each service's port (--dev)
export WARMLINE_DEV=true

# supervise NAME BINARY [flags...]: run it, and start it again whenever it exits, until
# scripts/up stops; its pid is in var/fleet/run/NAME.pid, its output in var/fleet/log/NAME.*.
# Waits for the first READY line.
supervise() {
  local name="$1"; shift
  : > "$FLEET_LOG/$name.out"
  (
    stop=0 pid=""
    trap 'stop=1; [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true' TERM
    while [ "$stop" = 0 ]; do
      "$@" >> "$FLEET_LOG/$name.out" 2>> "$FLEET_LOG/$name.log" &
      pid=$!
      echo "$pid" > "$FLEET_RUN/$name.pid"
      # a trapped signal ends a wait early: wait again until the service has gone
      while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
      [ "$stop" = 0 ] || break
      echo "$(date '+%F %T') $name exited; starting it again" >> "$FLEET_LOG/$name.log"
      sleep 0.5  # not a tight loop if it cannot start
    done
  ) &
  SERVICE_PIDS+=($!)
  wait_ready "$FLEET_LOG/$name.out" "$name" "see var/fleet/log/$name.log"
}

say "starting 3 relays, 3 matchmakers and the web app"
for i in 0 1 2; do
  supervise "relay-$((i + 1))" "$ROOT/build/services/relay/relay" --listen "127.0.0.1:${relay[i]}" --ack-replicas 1
done
for i in 0 1 2; do
  supervise "matchmaker-$((i + 1))" "$ROOT/build/services/matchmaker/matchmaker" --listen "127.0.0.1:${mm[i]}" \
    --relay-url "ws://127.0.0.1:$front/v1/relay" --ack-replicas 1
done
supervise web-1 "$ROOT/build/services/web/warmline-web" --listen "127.0.0.1:$web" \
  --matchmaker-url "ws://127.0.0.1:$front/v1/ws" --connect-src "ws://127.0.0.1:$front"

# The front door: deploy/haproxy/warmline.cfg.in with this run's ports. A line holding only
# @MATCHMAKERS@, @RELAYS@ or @WEBS@ becomes one server line per process, indented as it was.
render_haproxy() {
  local line indent
  while IFS= read -r line; do
    indent="${line%%[! ]*}"
    case "${line#"$indent"}" in
      @MATCHMAKERS@) for i in 0 1 2; do echo "${indent}server matchmaker-$((i + 1)) 127.0.0.1:${mm[i]}"; done ;;
      @RELAYS@) for i in 0 1 2; do echo "${indent}server relay-$((i + 1)) 127.0.0.1:${relay[i]}"; done ;;
      @WEBS@) echo "${indent}server web-1 127.0.0.1:$web" ;;
      *)
        line="${line//@FRONT@/127.0.0.1:$front}"
        line="${line//@STATS@/127.0.0.1:$stats}"
        line="${line//@STATS_SOCKET@/$FLEET_RUN/haproxy.sock}"
        printf '%s\n' "${line//@CHECK_MS@/$CHECK_MS}"
        ;;
    esac
  done < "$ROOT/deploy/haproxy/warmline.cfg.in"
}
render_haproxy > "$FLEET_RUN/haproxy.cfg"
"$HAPROXY" -c -f "$FLEET_RUN/haproxy.cfg" >/dev/null ||
  { echo "var/fleet/run/haproxy.cfg is not a valid HAProxy configuration" >&2; exit 1; }
say "starting HAProxy on 127.0.0.1:$front (stats on 127.0.0.1:$stats)"
"$HAPROXY" -db -f "$FLEET_RUN/haproxy.cfg" 2>> "$FLEET_LOG/haproxy.log" &
SERVICE_PIDS+=($!)

# How many servers HAProxy has UP, from its stats as CSV (read with bash alone: no curl needed)
servers_up() {
  (exec 3<>"/dev/tcp/127.0.0.1/$stats" && printf 'GET /;csv HTTP/1.0\r\n\r\n' >&3 && cat <&3) 2>/dev/null |
    grep -v -e ',FRONTEND,' -e ',BACKEND,' | grep -c ',UP,' || true
}
for _ in $(seq 100); do
  [ "$(servers_up)" -ge 7 ] && break
  sleep 0.1
done
[ "$(servers_up)" -ge 7 ] ||
  { echo "HAProxy does not see every service up; see http://127.0.0.1:$stats/ and var/fleet/log/" >&2; exit 1; }

cat <<INFO

  Warmline is up: a fleet behind one front door.
    Web app:      http://localhost:$front/   (seekers; listeners at /listener.html,
                  supervisors at /supervisor.html)
    Front door:   HAProxy on 127.0.0.1:$front: /v1/ws to the matchmakers, /v1/relay to the relays,
                  the rest to the web app; each checked on /readyz every $CHECK_MS ms
    HAProxy:      stats at http://127.0.0.1:$stats/ (CSV: http://127.0.0.1:$stats/;csv),
                  admin socket var/fleet/run/haproxy.sock
    Matchmakers:  127.0.0.1:${mm[0]}, :${mm[1]}, :${mm[2]}
    Relays:       127.0.0.1:${relay[0]}, :${relay[1]}, :${relay[2]}   (--ack-replicas 1, as the matchmakers)
    Web app:      127.0.0.1:$web
    Redis:        $REDIS_URL
                  (primary 127.0.0.1:$redis1, replica 127.0.0.1:$redis2, data in var/fleet/)
    Logs, pids:   var/fleet/log/, var/fleet/run/<name>.pid

  A rolling restart by hand: kill -TERM "\$(cat var/fleet/run/matchmaker-1.pid)" drains it
  (${DRAIN_MS} ms of /readyz "draining", then its clients are closed with 1001 and reconnect through the
  front door) and it is started again; wait for it to be UP on the stats page, then the next.

  Accounts for the listener and supervisor pages (each prints a token, shown only once):
    export WARMLINE_REDIS_URL=$REDIS_URL WARMLINE_CATALOGUE=$ROOT/deploy/catalogue.json
    build/services/admin/warmline-admin listener create --name Sam --topics anxiety,general --languages en
    build/services/admin/warmline-admin supervisor create --name Robin

  Or try a match from two terminals:
    build/clients/warmline-client --url ws://127.0.0.1:$front/v1/ws listener --token <token printed above>
    build/clients/warmline-client --url ws://127.0.0.1:$front/v1/ws seeker

  Ctrl-C stops everything.
INFO
# (Ctrl-C runs the trap inside this wait; the trap reaps them all, which the wait may then report)
wait -n "${SERVICE_PIDS[@]}" "${SENTINEL_PIDS[@]}" "${REDIS_PIDS[@]}" 2>/dev/null || true
