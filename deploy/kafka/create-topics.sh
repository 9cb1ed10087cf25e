#!/bin/sh
# Creates Pingan's topics on a real Kafka cluster, replicated, before any worker starts.
#
# Why this exists: the app creates missing topics itself (streams/topics.py, faust) with
# PINGAN_TOPIC_REPLICATION_FACTOR replicas, or when that is unset min(3, brokers) on Apache Kafka and 1 on the
# embedded broker (streams/broker_profile.py). On a cluster with min.insync.replicas=2, a topic with one replica
# refuses every acks=all write (NOT_ENOUGH_REPLICAS), and every Pingan producer uses acks=all. Topics that
# already exist are left as they are by the app (it only warns on a partition-count mismatch), so creating
# them here first, with RF 3, makes the cluster's durability explicit, whatever the workers are told.
#
# Topics: the three of streams/topics.py (3 partitions, 7 days), plus faust's internal ones for app id
# $PINGAN_APP_ID: the dedup Table's changelog (compacted, co-partitioned with incidents.raw) and the
# assignor's leader topic (1 partition).
#
# Environment: KAFKA_BOOTSTRAP_SERVERS (required), PINGAN_TOPIC_PREFIX (""), PINGAN_APP_ID (pingan),
# PINGAN_TOPIC_PARTITIONS (3), PINGAN_TOPIC_REPLICATION_FACTOR (3), PINGAN_TOPIC_MIN_ISR (2),
# KAFKA_TOPICS_BIN (/opt/kafka/bin/kafka-topics.sh, the apache/kafka image's path).
set -eu

BOOTSTRAP="${KAFKA_BOOTSTRAP_SERVERS:?set KAFKA_BOOTSTRAP_SERVERS}"
PREFIX="${PINGAN_TOPIC_PREFIX:-}"
APP_ID="${PINGAN_APP_ID:-pingan}"
PARTITIONS="${PINGAN_TOPIC_PARTITIONS:-3}"
RF="${PINGAN_TOPIC_REPLICATION_FACTOR:-3}"
MIN_ISR="${PINGAN_TOPIC_MIN_ISR:-2}"
KT="${KAFKA_TOPICS_BIN:-/opt/kafka/bin/kafka-topics.sh}"
RETENTION_MS=604800000  # 7 days, streams/topics.py RETENTION_MS

# Wait for the cluster to answer (brokers may still be electing a controller).
tries=0
until "$KT" --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "create-topics: $BOOTSTRAP did not answer in 120 s" >&2
    exit 1
  fi
  sleep 2
done

create() {  # create NAME PARTITIONS [--config k=v ...]
  name="$1"
  partitions="$2"
  shift 2
  "$KT" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name" \
    --partitions "$partitions" --replication-factor "$RF" --config "min.insync.replicas=$MIN_ISR" "$@"
}

for topic in incidents.raw incidents notifications; do
  create "$PREFIX$topic" "$PARTITIONS" --config "retention.ms=$RETENTION_MS"
done
create "$APP_ID-__assignor-__leader" 1

"$KT" --bootstrap-server "$BOOTSTRAP" --describe --topic "^(${PREFIX}incidents.*|${PREFIX}notifications|${APP_ID}-.*)\$" \
  || true
echo "create-topics: done"
