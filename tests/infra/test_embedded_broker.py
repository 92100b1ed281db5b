"""`shop up` and `shop demo` start the dev broker only when SHOP_KAFKA_BOOTSTRAP is unset:
pointing that one setting at another Kafka is all it takes to run on it."""

from __future__ import annotations

from infra.kafka.probe import kafka_answers
from infra.settings import Settings
from infra.supervisor import BROKER, Supervisor, free_port
from infra.up import start_broker_if_embedded


def test_the_embedded_default_is_the_dev_broker_the_supervisor_starts(tmp_path):
    settings = Settings(data_dir=tmp_path, broker_port=free_port())
    supervisor = Supervisor({}, tmp_path / "logs")
    try:
        start_broker_if_embedded(supervisor, settings)
        assert settings.kafka_bootstrap_servers == f"127.0.0.1:{settings.broker_port}"
        assert kafka_answers("127.0.0.1", settings.broker_port)
    finally:
        codes = supervisor.stop()
    assert codes == {BROKER: 0}
    assert not kafka_answers("127.0.0.1", settings.broker_port)


def test_a_configured_bootstrap_replaces_the_dev_broker(tmp_path, capsys):
    elsewhere = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    settings = Settings(data_dir=tmp_path, kafka_bootstrap=elsewhere)
    supervisor = Supervisor({}, tmp_path / "logs")
    start_broker_if_embedded(supervisor, settings)
    assert supervisor.children == {}
    assert settings.kafka_bootstrap_servers == elsewhere
    assert not settings.embedded_broker
    assert f"no Kafka answers at SHOP_KAFKA_BOOTSTRAP={elsewhere}" in capsys.readouterr().out
