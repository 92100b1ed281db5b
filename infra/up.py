"""`shop up`: every process on its configured port, until Ctrl-C; with `--stage N`, moved to
stage N once up, so a trainee can open any stage of the migration directly."""

from __future__ import annotations

import signal
import threading

from infra.kafka.probe import kafka_answers
from infra.processes import PROCESSES
from infra.settings import GatewaySettings, SharedSettings
from infra.stages import STAGES, Endpoints, StageEngine, StageRefused
from infra.supervisor import BROKER, Supervisor


def run_up(settings: SharedSettings, stage: int | None = None) -> int:
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
    if stage is not None and not move_to(stage, settings):
        supervisor.stop()
        return 1
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


def move_to(stage: int, settings: SharedSettings) -> bool:
    """Every stage up to `stage` in turn, as `shop stage apply --force` walks them, except that
    a ramped route's weights move in one jump: nothing drives traffic here for a ramp to judge.
    From a fresh data dir that is stages 1..N; a used one is moved from the stage it is at."""
    print(f"\nmoving to stage {stage}: {STAGES[stage].name}")
    engine = StageEngine(Endpoints.from_registry(settings.admin_token), say=print, ramps=False)
    try:
        reached = engine.apply(stage, force=True)
    except StageRefused as exc:
        print(f"stage {stage} refused: {exc}")
        return False
    finally:
        engine.close()
    print(f"at stage {reached}: {STAGES[reached].name} (`shop stage show` tells its configuration)")
    return True


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
