"""`shop up`: every process on its configured port, until Ctrl-C."""

from __future__ import annotations

import signal
import threading

from infra.kafka.probe import kafka_answers
from infra.processes import PROCESSES
from infra.settings import GatewaySettings, SharedSettings
from infra.supervisor import BROKER, Supervisor


def run_up(settings: SharedSettings) -> int:
    supervisor = Supervisor({}, settings.data_dir / "logs")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        start_broker_if_embedded(supervisor, settings)
        supervisor.start_in_order({name: p.port() for name, p in PROCESSES.items()})
    except RuntimeError as exc:
        print(exc)
        supervisor.stop()
        return 1
    print(f"{'process':<16} {'url':<26} owns")
    for name, child in supervisor.children.items():
        print(f"{name:<16} {child.url:<26} {owns(name)}")
    if not settings.embedded_broker:
        print(f"{'kafka':<16} {settings.kafka_bootstrap_servers:<26} SHOP_KAFKA_BOOTSTRAP")
    if "gateway" in supervisor.children:
        print(f"\nmigration console: {console_url(PROCESSES['gateway'].load())}")
    print(
        f"\nmetrics at <url>/metrics, health at <url>/health/ready; "
        f"logs in {settings.data_dir / 'logs'}\nCtrl-C stops everything gracefully."
    )
    while not stop.wait(0.5):
        exited = [c.name for c in supervisor.children.values() if c.process.poll() is not None]
        if exited:
            print(f"{', '.join(exited)} exited; stopping the rest")
            break
    codes = supervisor.stop()
    print("stopped: " + ", ".join(f"{name} exit {code}" for name, code in codes.items()))
    return 0 if all(code == 0 for code in codes.values()) else 1


def start_broker_if_embedded(supervisor: Supervisor, settings: SharedSettings) -> None:
    """The dev broker, unless SHOP_KAFKA_BOOTSTRAP names a Kafka to use instead."""
    if settings.embedded_broker:
        supervisor.start_broker(settings.broker_port, settings.data_dir / "broker")
        supervisor.wait_ready()
    elif not any(map(_answers, settings.kafka_bootstrap_servers.split(","))):
        print(f"warning: no Kafka answers at SHOP_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}")


def _answers(address: str) -> bool:
    host, _, port = address.strip().rpartition(":")
    return kafka_answers(host, int(port or 9092))


def owns(name: str) -> str:
    if name == BROKER:
        return "Kafka topics, groups, offsets: the embedded broker"
    return PROCESSES[name].owns


def console_url(settings: GatewaySettings) -> str:
    """The console's address; outside production it carries the admin token in the fragment
    (which never leaves the browser), so a newcomer lands on the live page."""
    url = f"{settings.url(settings.gateway_port)}/console"
    return url if settings.env == "production" else f"{url}#token={settings.admin_token}"
