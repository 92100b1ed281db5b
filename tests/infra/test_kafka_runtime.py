"""Pieces of the Apache Kafka runner that need no JVM."""

from __future__ import annotations

import base64

from infra.kafka.runtime import KafkaNode, new_cluster_id


def test_cluster_ids_are_16_bytes_and_never_read_as_an_option():
    ids = [new_cluster_id() for _ in range(5000)]
    assert not any(cluster_id.startswith("-") for cluster_id in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)
    assert len(set(ids)) == len(ids)


def test_the_properties_bind_loopback_and_keep_internal_topics_to_one_replica(tmp_path):
    node = KafkaNode(tmp_path / "lib", tmp_path / "data", port=19192, controller_port=19555)
    text = node.write_config().read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19555" in text
    assert "controller.quorum.voters=1@127.0.0.1:19555" in text
    assert "offsets.topic.replication.factor=1" in text
    assert "group.initial.rebalance.delay.ms=0" in text
    assert "${" not in text
