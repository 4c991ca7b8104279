#!/usr/bin/env bash
# Local service stack for tests on machines without a Docker engine: Kafka (KRaft),
# Kafka Connect with Debezium, OpenSearch and a MongoDB wire-protocol stand-in, each a
# JVM run from jars that Maven fetches from Maven Central. Everything listens on
# 127.0.0.1 only; runtime files live in stack/.work/ (git-ignored).
#
#   stack.sh up [service…]        start (default: all), wait until healthy; no-op if running
#   stack.sh down [service…]      stop (default: all): SIGTERM, wait, then SIGKILL
#   stack.sh restart <service…>   stop and start again only those (fault tests: a broker
#                                 restart under a running Connect worker), wait until healthy
#   stack.sh status [service…]    state, pid, RSS, uptime, health; exit 3 if any is not healthy
#   stack.sh logs <service> [-f]  last lines of .work/logs/<service>.log (-f follows)
#
# Services: kafka, connect (needs kafka; starts it), opensearch, mongo.
# Environment: STACK_TIMEOUT_<SERVICE> (seconds, e.g. STACK_TIMEOUT_CONNECT=300),
#              STACK_MAVEN_ARGS (extra mvn arguments, e.g. -Dmaven.repo.local=…),
#              STACK_LOG_LINES (lines shown by `logs` and on failure),
#              STACK_HOME (the stack folder whose .work/ holds the running services; default
#              this script's folder, e.g. another checkout's stack/ when sharing its stack).
set -euo pipefail

STACK_DIR="${STACK_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
WORK="$STACK_DIR/.work"
LIB="$WORK/lib"
RUN="$WORK/run"
LOGS="$WORK/logs"
DATA="$WORK/data"
CONF="$WORK/conf"
HOST=127.0.0.1

ALL_SERVICES=(kafka connect opensearch mongo)
CONNECT_PLUGIN_CLASSES=(
  io.debezium.connector.mariadb.MariaDbConnector
  io.debezium.connector.mysql.MySqlConnector
  io.debezium.connector.postgresql.PostgresConnector
)
LOG_LINES="${STACK_LOG_LINES:-40}"

# ---------------------------------------------------------------- small helpers

say() { printf 'stack: %s\n' "$*"; }
warn() { printf 'stack: %s\n' "$*" >&2; }
die() {
  printf 'stack: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# Microseconds since the epoch, for durations without forking `date`.
now_us() { echo "${EPOCHREALTIME/./}"; }
seconds_since() { awk -v a="$1" -v b="$(now_us)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

tcp_open() { timeout 1 bash -c ">/dev/tcp/$1/$2" 2>/dev/null; }

is_service() {
  local s
  for s in "${ALL_SERVICES[@]}"; do
    if [[ "$s" == "$1" ]]; then return 0; fi
  done
  return 1
}

service_ports() {
  case "$1" in
    kafka) echo "9092 9093" ;;
    connect) echo "8083" ;;
    opensearch) echo "9200 9300" ;;
    mongo) echo "27017" ;;
  esac
}

service_endpoint() {
  case "$1" in
    kafka) echo "$HOST:9092" ;;
    connect) echo "http://$HOST:8083" ;;
    opensearch) echo "http://$HOST:9200" ;;
    mongo) echo "mongodb://$HOST:27017" ;;
  esac
}

# Maven profiles (pom.xml) whose classpath folders a service needs.
service_profiles() {
  case "$1" in
    connect) echo "connect debezium-mariadb debezium-mysql debezium-postgres" ;;
    *) echo "$1" ;;
  esac
}

default_timeout() {
  case "$1" in
    kafka) echo 90 ;;
    connect) echo 180 ;;
    opensearch) echo 150 ;;
    mongo) echo 30 ;;
  esac
}

start_timeout() {
  local var="STACK_TIMEOUT_${1^^}"
  echo "${!var:-$(default_timeout "$1")}"
}

stop_grace() {
  case "$1" in
    mongo) echo 10 ;;
    *) echo 30 ;;
  esac
}

log_file() { echo "$LOGS/$1.log"; }
pid_file() { echo "$RUN/$1.pid"; }

# Pid of a running service, or nothing. The command line must carry our marker so a
# recycled pid from a stale file is never mistaken for (or killed as) the service.
service_pid() {
  local file pid
  file="$(pid_file "$1")"
  [[ -s "$file" ]] || return 0
  pid="$(<"$file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "-Dstack.service=$1 "; then
    echo "$pid"
  fi
}

clean_stale_pid() {
  local file
  file="$(pid_file "$1")"
  if [[ -e "$file" && -z "$(service_pid "$1")" ]]; then
    say "$1: removing stale pid file ($(cat "$file" 2>/dev/null || true))"
    rm -f "$file"
  fi
}

rss_mb() {
  awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"
}

check_prerequisites() {
  command -v java >/dev/null || die "java not found on PATH (Java 17 is required)"
  command -v mvn >/dev/null || die "mvn not found on PATH"
  command -v curl >/dev/null || die "curl not found on PATH"
  local major
  major="$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ { print $2 }')"
  [[ "${major%%.*}" -ge 17 ]] 2>/dev/null || die "Java 17+ is required, found '${major}'"
}

with_lock() {
  mkdir -p "$RUN"
  exec 9>"$RUN/stack.lock"
  # Parallel test workers may all call `up`: the first starts, the others wait and then
  # find everything running.
  flock -w 900 9 || die "timed out waiting for another stack.sh to finish ($RUN/stack.lock)"
}

# ---------------------------------------------------------------- classpaths (Maven)

profile_folder() {
  case "$1" in
    debezium-*) echo "$LIB/connect-plugins/$1" ;;
    *) echo "$LIB/$1" ;;
  esac
}

# The pom plus the profile's own Java sources decide whether a folder is current.
profile_hash() {
  {
    cat "$STACK_DIR/pom.xml"
    if [[ -d "$STACK_DIR/src/main/java/cqrsmigrate/stack/$1" ]]; then
      find "$STACK_DIR/src/main/java/cqrsmigrate/stack/$1" -type f -print0 | sort -z | xargs -0 cat
    fi
  } | sha256sum | cut -d' ' -f1
}

run_maven() {
  # shellcheck disable=SC2086 # STACK_MAVEN_ARGS is a list of arguments on purpose
  mvn -B -q -Dstyle.color=never -f "$STACK_DIR/pom.xml" -P "$1" ${STACK_MAVEN_ARGS:-} package
}

ensure_classpath() {
  local profile="$1" folder want started mvn_log
  folder="$(profile_folder "$profile")"
  want="$(profile_hash "$profile")"
  if [[ -f "$folder/.stack-hash" && "$(<"$folder/.stack-hash")" == "$want" ]]; then
    return 0
  fi
  mkdir -p "$LOGS"
  mvn_log="$LOGS/maven-$profile.log"
  say "$profile: fetching the classpath with Maven (first run or pom changed) …"
  started="$(now_us)"
  rm -rf "$folder"
  if ! run_maven "$profile" >"$mvn_log" 2>&1; then
    warn "$profile: maven failed; retrying once"
    sleep 3
    rm -rf "$folder"
    if ! run_maven "$profile" >>"$mvn_log" 2>&1; then
      tail -n "$LOG_LINES" "$mvn_log" >&2
      die "$profile: could not fetch the classpath from Maven Central (log: $mvn_log)"
    fi
  fi
  mkdir -p "$folder"
  echo "$want" >"$folder/.stack-hash"
  say "$profile: classpath ready in $(seconds_since "$started")s ($(du -sh "$folder" | cut -f1), $(find "$folder" -name '*.jar' | wc -l) jars)"
}

# ---------------------------------------------------------------- per-service config

# Short-lived JVMs (health checks, storage formatting): quick start, little memory.
KAFKA_TOOL=(java -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -Dlog4j.configuration="file:$STACK_DIR/config/tools-log4j.properties"
  -cp "$LIB/kafka/*")

write_kafka_config() {
  mkdir -p "$CONF" "$DATA/kafka"
  cat >"$CONF/kafka.properties" <<EOF
# Generated by stack.sh on every start; edit stack.sh instead.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:9093
listeners=PLAINTEXT://$HOST:9092,CONTROLLER://$HOST:9093
advertised.listeners=PLAINTEXT://$HOST:9092
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/kafka
auto.create.topics.enable=true
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
# Tests start consumers one after another; waiting 3 s for more members only slows them.
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
EOF
  cat >"$CONF/kafka-admin.properties" <<EOF
request.timeout.ms=5000
default.api.timeout.ms=10000
EOF
}

# Formats the KRaft storage once. The cluster id is generated once, kept in
# .work/data/kafka-cluster-id and must match the formatted storage.
prepare_kafka() {
  write_kafka_config
  local id_file="$DATA/kafka-cluster-id" meta="$DATA/kafka/meta.properties" id formatted
  if [[ -f "$meta" ]]; then
    formatted="$(sed -n 's/^cluster.id=//p' "$meta")"
    if [[ ! -s "$id_file" ]]; then
      echo "$formatted" >"$id_file"
    elif [[ "$(<"$id_file")" != "$formatted" ]]; then
      die "kafka: storage in $DATA/kafka belongs to cluster '$formatted', but $id_file says '$(<"$id_file")'"
    fi
    return 0
  fi
  if [[ ! -s "$id_file" ]]; then
    "${KAFKA_TOOL[@]}" kafka.tools.StorageTool random-uuid >"$id_file.tmp"
    mv "$id_file.tmp" "$id_file"
  fi
  id="$(<"$id_file")"
  say "kafka: formatting KRaft storage for cluster $id"
  "${KAFKA_TOOL[@]}" kafka.tools.StorageTool format -t "$id" -c "$CONF/kafka.properties" >>"$(log_file kafka)" 2>&1 ||
    die "kafka: storage format failed (log: $(log_file kafka))"
}

prepare_connect() {
  mkdir -p "$CONF"
  cat >"$CONF/connect.properties" <<EOF
# Generated by stack.sh on every start; edit stack.sh instead.
bootstrap.servers=$HOST:9092
group.id=cqrs-connect
config.storage.topic=cqrs-connect-configs
offset.storage.topic=cqrs-connect-offsets
status.storage.topic=cqrs-connect-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=5
status.storage.partitions=3
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
listeners=http://$HOST:8083
rest.advertised.host.name=$HOST
rest.advertised.port=8083
rest.advertised.listener=http
# One folder per connector: each gets its own class loader, so their drivers cannot clash.
plugin.path=$LIB/connect-plugins
# Commit source offsets every second so tests that restart a connector resume promptly.
offset.flush.interval.ms=1000
EOF
}

prepare_opensearch() { mkdir -p "$DATA/opensearch"; }
prepare_mongo() { :; }

# Sets CMD to the JVM command line of a service. -Dstack.service marks our processes.
CMD=()
service_command() {
  local svc="$1"
  local common=(-Dstack.service="$svc" -XX:+UseG1GC -XX:MaxGCPauseMillis=50
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)
  case "$svc" in
    kafka)
      CMD=(java -Xms256m -Xmx512m "${common[@]}" \
        -Dlog4j.configuration="file:$STACK_DIR/config/log4j.properties" \
        -cp "$LIB/kafka/*" kafka.Kafka "$CONF/kafka.properties")
      ;;
    connect)
      CMD=(java -Xms256m -Xmx768m "${common[@]}" \
        -Dlog4j.configuration="file:$STACK_DIR/config/log4j.properties" \
        -cp "$LIB/connect/*" org.apache.kafka.connect.cli.ConnectDistributed "$CONF/connect.properties")
      ;;
    opensearch)
      # -Djava.locale.providers as in OpenSearch 2.x's own jvm.options (date parsing).
      # shellcheck disable=SC2054 # SPI,COMPAT is one value
      CMD=(java -Xms1g -Xmx1g "${common[@]}" \
        -Djava.locale.providers=SPI,COMPAT -Dlog4j2.formatMsgNoLookups=true \
        -Dstack.opensearch.home="$DATA/opensearch" -Dstack.opensearch.host="$HOST" \
        -Dstack.opensearch.http.port=9200 -Dstack.opensearch.transport.port=9300 \
        -cp "$LIB/opensearch/*" cqrsmigrate.stack.opensearch.OpenSearchMain)
      ;;
    mongo)
      # Every document lives in this heap: the bench's small bank on the Debezium path, after
      # its 2,000 row changes/s level, outgrew 256 MB and the stand-in exited on OOM.
      CMD=(java -Xms32m -Xmx1g "${common[@]}" \
        -Dstack.mongo.host="$HOST" -Dstack.mongo.port=27017 \
        -cp "$LIB/mongo/*" cqrsmigrate.stack.mongo.MongoMain)
      ;;
  esac
}

# ---------------------------------------------------------------- health checks

healthy_kafka() {
  tcp_open "$HOST" 9092 || return 1
  timeout 30 "${KAFKA_TOOL[@]}" org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:9092" \
    --command-config "$CONF/kafka-admin.properties" --list >/dev/null 2>&1
}

healthy_connect() {
  local plugins cls
  plugins="$(curl -fsS -m 3 "http://$HOST:8083/connector-plugins" 2>/dev/null)" || return 1
  for cls in "${CONNECT_PLUGIN_CLASSES[@]}"; do
    grep -q "\"$cls\"" <<<"$plugins" || return 1
  done
}

# The "ready" line comes after OpenSearchMain applied its cluster defaults, so no test
# creates an index before the replica default is in place.
healthy_opensearch() {
  grep -q 'stack: opensearch ready' "$(log_file opensearch)" 2>/dev/null || return 1
  curl -fsS -m 3 "http://$HOST:9200/_cluster/health" 2>/dev/null | grep -Eq '"status":"(green|yellow)"'
}

# A real round trip when Node and the project's mongodb driver are at hand; otherwise
# the port plus the server's own "ready" line (printed after the bind succeeded).
healthy_mongo() {
  tcp_open "$HOST" 27017 || return 1
  if command -v node >/dev/null && [[ -d "$STACK_DIR/../node_modules/mongodb" ]]; then
    (cd "$STACK_DIR/.." && timeout 15 node --input-type=module -e "
      import { MongoClient } from 'mongodb';
      const client = new MongoClient('mongodb://$HOST:27017', { serverSelectionTimeoutMS: 3000 });
      try { const r = await client.db('admin').command({ ping: 1 }); process.exit(r.ok === 1 ? 0 : 1); }
      catch { process.exit(1); } finally { await client.close(); }
    ") >/dev/null 2>&1
  else
    grep -q 'stack: mongo ready' "$(log_file mongo)" 2>/dev/null
  fi
}

is_healthy() { "healthy_$1"; }

# Whether a process stack.sh did not start (another checkout's stack, a CI run's, a system
# service) already serves this service on its port: checked by protocol, not by our logs.
serves_kafka() {
  mkdir -p "$CONF"
  [[ -f "$CONF/kafka-admin.properties" ]] || write_kafka_config
  healthy_kafka
}
serves_connect() { healthy_connect; }
serves_opensearch() {
  curl -fsS -m 3 "http://$HOST:9200/_cluster/health" 2>/dev/null | grep -Eq '"status":"(green|yellow)"'
}
serves_mongo() { [[ -d "$STACK_DIR/../node_modules/mongodb" ]] && healthy_mongo; }

# True (and says so) when the service is already served on its port by a process we did
# not start: two checkouts on one machine then share one stack instead of failing.
adopt() {
  local svc="$1" port
  [[ -z "$(service_pid "$svc")" ]] || return 1
  port="$(service_ports "$svc" | cut -d' ' -f1)"
  tcp_open "$HOST" "$port" || return 1
  "serves_$svc" || return 1
  say "$svc: served on $HOST:$port by a process this checkout did not start ($(port_owner "$port")); using it"
}

# ---------------------------------------------------------------- start / stop

port_owner() {
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n 1
}

# Starts the JVM detached from our session (so a test runner killing its process group
# does not take the shared stack with it) and records its pid; no-op if it runs already.
# Adds the service to FRESH when it was started now.
declare -A FRESH=()
launch() {
  local svc="$1" pid port log pidf
  pid="$(service_pid "$svc")"
  if [[ -n "$pid" ]]; then
    say "$svc: already running (pid $pid)"
    return 0
  fi
  FRESH[$svc]=1
  clean_stale_pid "$svc"
  for port in $(service_ports "$svc"); do
    if tcp_open "$HOST" "$port"; then
      die "$svc: port $HOST:$port is already in use by a process stack.sh did not start ($(port_owner "$port"))"
    fi
  done

  mkdir -p "$LOGS" "$RUN" "$DATA"
  log="$(log_file "$svc")"
  pidf="$(pid_file "$svc")"
  if [[ -f "$log" ]]; then mv -f "$log" "$log.1"; fi
  printf '=== stack.sh: starting %s at %s ===\n' "$svc" "$(date -Is)" >"$log"
  "prepare_$svc"

  service_command "$svc"
  rm -f "$pidf"
  # fd 9 holds the stack lock: the long-lived JVM must not inherit it.
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec nohup "$@"' "$pidf" "${CMD[@]}" \
    </dev/null >>"$log" 2>&1 9>&- &
  local i
  for i in $(seq 1 50); do
    [[ -s "$pidf" ]] && break
    sleep 0.1
  done
  [[ -s "$pidf" ]] || die "$svc: the process did not record its pid"
  say "$svc: started (pid $(<"$pidf")), waiting until healthy …"
}

# Polls the given services together until each answers its health check, so every
# reported time is that service's own. A service that exits or stays unhealthy past
# its timeout gets its last log lines printed and is stopped; then we exit non-zero.
declare -A STARTED=()
wait_healthy() {
  local -a pending=("$@") still=()
  local -A deadline=()
  local svc pid log failed=""
  for svc in "${pending[@]}"; do deadline[$svc]=$((SECONDS + $(start_timeout "$svc"))); done
  while ((${#pending[@]})); do
    still=()
    for svc in "${pending[@]}"; do
      log="$(log_file "$svc")"
      pid="$(service_pid "$svc")"
      if [[ -z "$pid" ]]; then
        warn "$svc: the process exited during start-up; last lines of $log:"
        tail -n "$LOG_LINES" "$log" >&2 || true
        rm -f "$(pid_file "$svc")"
        failed+=" $svc"
      elif is_healthy "$svc"; then
        if [[ -n "${FRESH[$svc]:-}" ]]; then
          say "$svc: healthy after $(seconds_since "${STARTED[$svc]}")s (pid $pid, RSS $(rss_mb "$pid") MB) — $(service_endpoint "$svc")"
        else
          say "$svc: healthy (pid $pid, RSS $(rss_mb "$pid") MB) — $(service_endpoint "$svc")"
        fi
      elif ((SECONDS >= deadline[$svc])); then
        warn "$svc: not healthy after $(start_timeout "$svc")s (raise STACK_TIMEOUT_${svc^^} if the machine is just slow); last lines of $log:"
        tail -n "$LOG_LINES" "$log" >&2 || true
        stop_service "$svc" >&2
        failed+=" $svc"
      else
        still+=("$svc")
      fi
    done
    pending=("${still[@]}")
    if ((${#pending[@]})); then sleep 1; fi
  done
  if [[ -n "$failed" ]]; then die "failed to start:$failed (logs: $LOGS/)"; fi
}

stop_service() {
  local svc="$1" pid grace deadline
  pid="$(service_pid "$svc")"
  if [[ -z "$pid" ]]; then
    clean_stale_pid "$svc"
    say "$svc: not running"
    return 0
  fi
  grace="$(stop_grace "$svc")"
  say "$svc: stopping (pid $pid) …"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + grace))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$svc: still running after ${grace}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$(pid_file "$svc")"
  say "$svc: stopped"
}

# ---------------------------------------------------------------- commands

validate_services() {
  local w
  for w in "$@"; do
    is_service "$w" || die "unknown service '$w' (known: ${ALL_SERVICES[*]})"
  done
}

# Requested services in the canonical order, defaulting to all (validate first: this
# runs in a command substitution, where die cannot end the script).
select_services() {
  local -a wanted=("$@") out=()
  local s w
  ((${#wanted[@]})) || wanted=("${ALL_SERVICES[@]}")
  for s in "${ALL_SERVICES[@]}"; do
    for w in "${wanted[@]}"; do
      if [[ "$s" == "$w" ]]; then
        out+=("$s")
        break
      fi
    done
  done
  echo "${out[@]}"
}

cmd_up() {
  local -a services
  validate_services "$@"
  read -r -a services <<<"$(select_services "$@")"
  # Connect cannot run without its broker.
  if [[ " ${services[*]} " == *" connect "* && " ${services[*]} " != *" kafka "* ]]; then
    services=(kafka "${services[@]}")
  fi
  check_prerequisites
  with_lock
  local svc profile
  for svc in "${services[@]}"; do
    if [[ -n "$(service_pid "$svc")" ]]; then continue; fi
    # Fetched even when another process serves the port: the Kafka health check runs Kafka's tools.
    for profile in $(service_profiles "$svc"); do ensure_classpath "$profile"; done
  done

  # Independent services start together; connect only once kafka answers.
  local -a first=()
  for svc in "${services[@]}"; do
    if [[ "$svc" == connect ]] || adopt "$svc"; then continue; fi
    STARTED[$svc]="$(now_us)"
    launch "$svc"
    first+=("$svc")
  done
  if ((${#first[@]})); then wait_healthy "${first[@]}"; fi
  if [[ " ${services[*]} " == *" connect "* ]] && ! adopt connect; then
    STARTED[connect]="$(now_us)"
    launch connect
    wait_healthy connect
  fi
}

cmd_down() {
  local -a services
  validate_services "$@"
  read -r -a services <<<"$(select_services "$@")"
  # Stopping the broker under a running worker would leave it retrying forever.
  if [[ " ${services[*]} " == *" kafka "* && " ${services[*]} " != *" connect "* && -n "$(service_pid connect)" ]]; then
    say "connect depends on kafka; stopping it too"
    services=(connect "${services[@]}")
  fi
  with_lock
  local i
  # Reverse order: dependents first.
  for ((i = ${#services[@]} - 1; i >= 0; i--)); do
    if [[ "${services[i]}" == kafka ]]; then continue; fi
    stop_service "${services[i]}"
  done
  if [[ " ${services[*]} " == *" kafka "* ]]; then stop_service kafka; fi
}

# Unlike down+up, restarting kafka leaves connect running: the worker rides the outage
# (and re-sends what it had not flushed), as it would in production.
cmd_restart() {
  [[ $# -ge 1 ]] || usage
  local -a services
  validate_services "$@"
  read -r -a services <<<"$(select_services "$@")"
  check_prerequisites
  with_lock
  local svc
  for svc in "${services[@]}"; do
    [[ -n "$(service_pid "$svc")" ]] || die "$svc: not started by this stack (stack.sh up $svc first)"
  done
  for svc in "${services[@]}"; do
    stop_service "$svc"
    STARTED[$svc]="$(now_us)"
    launch "$svc"
    wait_healthy "$svc"
  done
}

cmd_status() {
  local -a services
  validate_services "$@"
  read -r -a services <<<"$(select_services "$@")"
  local svc pid state rss uptime all_ok=0
  printf '%-11s %-9s %-8s %-8s %-8s %s\n' SERVICE STATE PID RSS_MB UPTIME ENDPOINT
  for svc in "${services[@]}"; do
    pid="$(service_pid "$svc")"
    rss="-" uptime="-"
    if [[ -z "$pid" ]]; then
      state=stopped
      if [[ -e "$(pid_file "$svc")" ]]; then state="stale-pid"; fi
      all_ok=3
      pid="-"
    else
      rss="$(rss_mb "$pid")"
      uptime="$(ps -o etimes= -p "$pid" | tr -d ' ')s"
      if is_healthy "$svc"; then state=healthy; else
        state=unhealthy
        all_ok=3
      fi
    fi
    printf '%-11s %-9s %-8s %-8s %-8s %s\n' "$svc" "$state" "$pid" "$rss" "$uptime" "$(service_endpoint "$svc")"
  done
  return "$all_ok"
}

cmd_logs() {
  [[ $# -ge 1 ]] || usage
  is_service "$1" || die "unknown service '$1' (known: ${ALL_SERVICES[*]})"
  local log
  log="$(log_file "$1")"
  [[ -f "$log" ]] || die "no log yet for $1 ($log)"
  if [[ "${2:-}" == "-f" ]]; then
    exec tail -n "${STACK_LOG_LINES:-200}" -F "$log"
  fi
  tail -n "${STACK_LOG_LINES:-200}" "$log"
}

main() {
  [[ $# -ge 1 ]] || usage
  local command="$1"
  shift
  case "$command" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    restart) cmd_restart "$@" ;;
    status) cmd_status "$@" ;;
    logs) cmd_logs "$@" ;;
    -h | --help | help) usage ;;
    *)
      warn "unknown command '$command'"
      usage
      ;;
  esac
}

main "$@"
