"""The broker suite: what any Kafka-protocol broker must do for the services' clients. Every
test runs against both brokers through the fixtures of tests/support/kafka_fixtures.py."""
