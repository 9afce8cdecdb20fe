#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, combined broker/controller) on 127.0.0.1 for development and tests.
#
#   scripts/kafka.sh fetch    download the broker jars from Maven Central into the cache (first time: minutes)
#   scripts/kafka.sh start    fetch if needed, format storage if new, start, wait until the broker answers
#   scripts/kafka.sh stop     stop the broker this script started (SIGTERM, then wait)
#   scripts/kafka.sh status   say whether it runs and where
#   scripts/kafka.sh clean    stop and delete the broker's data directory
#
# Setting RK_KAFKA__BOOTSTRAP=host:port means "use that existing broker": every command then does nothing.
#
# Environment:
#   RK_KAFKA_VERSION  Kafka release (default 4.1.1)
#   RK_KAFKA_PORT     client port on 127.0.0.1 (default 19092); the controller listens on port+1
#   RK_KAFKA_CACHE    jar cache (default ~/.cache/rueckkanal/kafka-<version>)
#   RK_KAFKA_DATA     log dirs, pid file and server log (default ~/.cache/rueckkanal/run/kafka-<port>)
set -euo pipefail

version="${RK_KAFKA_VERSION:-4.1.1}"
port="${RK_KAFKA_PORT:-19092}"
controller_port=$((port + 1))
cache="${RK_KAFKA_CACHE:-$HOME/.cache/rueckkanal/kafka-$version}"
data="${RK_KAFKA_DATA:-$HOME/.cache/rueckkanal/run/kafka-$port}"
pidfile="$data/kafka.pid"
log="$data/server.log"

say() { echo "kafka.sh: $*" >&2; }

external() {
    if [[ -n "${RK_KAFKA__BOOTSTRAP:-}" ]]; then
        say "RK_KAFKA__BOOTSTRAP=$RK_KAFKA__BOOTSTRAP is set: using that broker, nothing to $1"
        return 0
    fi
    return 1
}

fetch() {
    if [[ -f "$cache/.complete" ]]; then return 0; fi
    command -v mvn >/dev/null || { say "Maven (mvn) is needed for the first fetch of Kafka $version"; exit 1; }
    command -v java >/dev/null || { say "Java 17+ is needed to run Kafka"; exit 1; }
    say "fetching Apache Kafka $version jars from Maven Central into $cache (first time only)"
    local work
    work="$(mktemp -d)"
    cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.rueckkanal</groupId><artifactId>kafka-fetch</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
    rm -rf "$cache.partial"
    mvn -q -B -Dstyle.color=never -f "$work/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$cache.partial/libs"
    rm -rf "$work" "$cache"
    mv "$cache.partial" "$cache"
    touch "$cache/.complete"
    say "cached $(ls "$cache/libs" | wc -l) jars"
}

running() {
    [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

write_config() {
    cat >"$data/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data/logs
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
PROPS
    cat >"$data/log4j2.properties" <<PROPS
appender.file.type = File
appender.file.name = file
appender.file.fileName = $log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
PROPS
}

start() {
    external start && return 0
    if running; then say "already running on 127.0.0.1:$port (pid $(cat "$pidfile"))"; return 0; fi
    if port_open; then
        say "port $port is taken by another process; set RK_KAFKA_PORT, or RK_KAFKA__BOOTSTRAP to use that broker"
        exit 1
    fi
    fetch
    mkdir -p "$data"
    write_config
    local java_cmd=(java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$data/log4j2.properties" -cp "$cache/libs/*")
    if [[ ! -f "$data/logs/meta.properties" ]]; then
        local cluster_id
        cluster_id="$("${java_cmd[@]}" kafka.tools.StorageTool random-uuid)"
        "${java_cmd[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$data/server.properties" >/dev/null
    fi
    : >"$log"
    nohup "${java_cmd[@]}" kafka.Kafka "$data/server.properties" >"$data/stdout.log" 2>&1 &
    echo $! >"$pidfile"
    local deadline=$((SECONDS + ${RK_KAFKA_START_TIMEOUT:-90}))
    until port_open && grep -q "Kafka Server started" "$log" 2>/dev/null; do
        if ! running; then
            say "the broker exited during start-up; last lines of $log and $data/stdout.log:"
            tail -n 20 "$log" "$data/stdout.log" >&2 || true
            exit 1
        fi
        if ((SECONDS > deadline)); then
            say "the broker did not answer within ${RK_KAFKA_START_TIMEOUT:-90}s; see $log"
            stop
            exit 1
        fi
        sleep 0.3
    done
    say "Kafka $version running on 127.0.0.1:$port (pid $(cat "$pidfile"), data $data)"
}

stop() {
    external stop && return 0
    if ! running; then say "not running"; rm -f "$pidfile"; return 0; fi
    local pid
    pid="$(cat "$pidfile")"
    kill -TERM "$pid"
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS > deadline)); then say "no clean stop after 60s, killing"; kill -KILL "$pid"; fi
        sleep 0.2
    done
    rm -f "$pidfile"
    say "stopped"
}

status() {
    external status && return 0
    if running; then
        say "running on 127.0.0.1:$port (pid $(cat "$pidfile"), data $data)"
    else
        say "not running"
        return 3
    fi
}

clean() {
    external clean && return 0
    stop
    rm -rf "$data"
    say "removed $data"
}

case "${1:-}" in
    fetch) external fetch || fetch ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    clean) clean ;;
    *) echo "usage: $0 fetch|start|stop|status|clean" >&2; exit 2 ;;
esac
