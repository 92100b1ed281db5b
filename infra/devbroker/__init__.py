"""A single-node broker speaking the Kafka wire protocol, for laptops and CI.

The services use aiokafka against it exactly as they would against Apache Kafka.
See docs/devbroker.md for what it models and what it leaves out.
"""

from infra.devbroker.config import BrokerConfig
from infra.devbroker.server import Broker

__all__ = ["Broker", "BrokerConfig"]
