"""Which partition a key lands on: Kafka's default partitioner (murmur2, as the Java client, kafka-python and
aiokafka use it), which publish_all and the faust agents use alike."""

from kafka.partitioner.default import murmur2

from pingan.handlers.incidents.heartbeat import KEY_PREFIX


def partition_for(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def beat_keys(partitions: int) -> list[str]:
    """One heartbeat key per partition, so every round of beats visits every partition of every topic: a stuck
    partition is seen, not averaged."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < partitions:
        key = f"{KEY_PREFIX}{i}"
        found.setdefault(partition_for(key, partitions), key)
        i += 1
    return [found[p] for p in range(partitions)]
