"""Apache Kafka from Maven Central's jars: fetch them once, format a KRaft storage dir, run one
combined broker+controller node on loopback, and stop it. No tarball, no Docker: Java 17 and
Maven are all it needs. Used by `shop kafka`, the test fixture and bench/devbroker.py."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import IO

from infra.kafka.probe import kafka_answers

# The newest 4.x line that resolves from Maven Central here (docs/devbroker.md says why).
KAFKA_VERSION = "4.4.0"
JAVA_MIN = 17
_RECIPE = resources.files("infra.kafka")


class KafkaUnavailable(RuntimeError):
    """What is missing to run Apache Kafka on this machine, in words a user can act on."""


def default_home() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "strangler-shop" / "kafka"


def java_command() -> str:
    java_home = os.environ.get("JAVA_HOME")
    return str(Path(java_home) / "bin" / "java") if java_home else "java"


def check_java() -> int:
    """The Java major version, or KafkaUnavailable when it is absent or older than 17."""
    java = java_command()
    try:
        shown = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except FileNotFoundError:
        raise KafkaUnavailable(
            f"Java {JAVA_MIN}+ is needed to run Apache Kafka 4.x and `{java}` was not found: "
            "install a JDK or JRE 17 (Debian: apt-get install openjdk-17-jre-headless) "
            "or set JAVA_HOME"
        ) from None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if not found:
        raise KafkaUnavailable(f"could not read the Java version from `{java} -version`: {shown}")
    major = int(found[1]) if found[1] != "1" else int(found[2] or 0)
    if major < JAVA_MIN:
        raise KafkaUnavailable(
            f"Apache Kafka 4.x needs Java {JAVA_MIN}+, and `{java}` is Java {major}: "
            "install Java 17 or point JAVA_HOME at one"
        )
    return major


def jars_dir(home: Path, version: str = KAFKA_VERSION) -> Path:
    return home / version / "lib"


def fetch(home: Path, version: str = KAFKA_VERSION, echo=print) -> Path:
    """The directory of Kafka's jars, resolved by Maven into the cache on first use."""
    lib = jars_dir(home, version)
    if (lib / ".complete").exists():
        return lib
    if shutil.which("mvn") is None:
        raise KafkaUnavailable(
            "Maven is needed once, to fetch Apache Kafka's jars from Maven Central, and `mvn` "
            f"was not found: install it (Debian: apt-get install maven), or place the jars of "
            f"org.apache.kafka:kafka_2.13:{version} in {lib}"
        )
    echo(f"fetching Apache Kafka {version} from Maven Central into {lib} (once)")
    lib.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=lib.parent))
    with resources.as_file(_RECIPE / "pom.xml") as pom:
        done = subprocess.run(
            [
                "mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
                f"-Dkafka.version={version}", "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    if done.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        shutil.rmtree(staging, ignore_errors=True)
        raise KafkaUnavailable(
            f"Maven could not resolve org.apache.kafka:kafka_2.13:{version}:\n"
            + (done.stdout + done.stderr)[-2000:]
        )
    (staging / ".complete").touch()
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)  # atomic: a half-fetched cache is never taken for a whole one
    return lib


def installed_jars(home: Path | None, version: str = KAFKA_VERSION, echo=print) -> Path:
    """What every runner of Apache Kafka needs first: Java 17+, then the jars (fetched once
    into `home`, default ~/.cache/strangler-shop/kafka); KafkaUnavailable says what is missing."""
    check_java()
    return fetch(home or default_home(), version, echo=echo)


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding. Like Kafka's own
    Uuid.randomUuid it never starts with "-", which the storage tool would take for an option
    (one id in 64 would otherwise fail `format`)."""
    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()).startswith("-"):
        pass
    return cluster_id.rstrip("=")


@dataclass
class KafkaNode:
    """One Apache Kafka process: broker and controller in one JVM, bound to `host`."""

    lib: Path
    data_dir: Path
    port: int = 9192
    controller_port: int | None = None
    host: str = "127.0.0.1"
    partitions: int = 3
    group_min_session_timeout_ms: int = 6000
    offsets_partitions: int = 50
    # socket.request.max.bytes: larger requests are refused (Kafka's default, 100 MiB).
    max_request_bytes: int = 104_857_600
    heap: str = "512m"
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "kafka.log"

    def write_config(self) -> Path:
        template = Template((_RECIPE / "server.properties").read_text())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            template.substitute(
                host=self.host,
                port=self.port,
                controller_port=self.controller_port or self.port + 1,
                log_dir=self.data_dir / "logs",
                partitions=self.partitions,
                group_min_session_timeout_ms=self.group_min_session_timeout_ms,
                offsets_partitions=self.offsets_partitions,
                max_request_bytes=self.max_request_bytes,
            )
        )
        return self.config_path

    def format_storage(self) -> bool:
        """Format the KRaft log dir on first use; a formatted one keeps its topics and offsets."""
        if (self.data_dir / "logs" / "meta.properties").exists():
            return False
        self._java(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={new_cluster_id()}",
            f"--config={self.config_path}",
        )
        return True

    def _java(self, main: str, *args: str) -> None:
        done = subprocess.run(
            [java_command(), "-cp", f"{self.lib}/*", main, *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise KafkaUnavailable(f"{main} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def start(self, stdout: IO | int | None = None) -> None:
        """Start the JVM; its output goes to `stdout`, or to kafka.log in the data dir."""
        self.write_config()
        self.format_storage()
        with resources.as_file(_RECIPE / "log4j2.properties") as log_config:
            command = [
                java_command(), f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC",
                f"-Dlog4j2.configurationFile={log_config}", "-Djava.awt.headless=true",
                "-cp", f"{self.lib}/*", "kafka.Kafka", str(self.config_path),
            ]  # fmt: skip
        output = stdout if stdout is not None else self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds until the broker answers Kafka requests; raises if it exits or times out."""
        started = time.monotonic()
        while not kafka_answers(self.host, self.port, timeout=1.0):
            if self.process is None or self.process.poll() is not None:
                raise KafkaUnavailable(f"Apache Kafka exited during start-up:\n{self.log_tail()}")
            if time.monotonic() - started > timeout:
                raise KafkaUnavailable(f"Kafka not ready in {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, the controlled shutdown Kafka does on it, then the exit code (None: killed).
        The JVM reports 143 (128 + SIGTERM) after a clean shutdown hook; both mean clean."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = None
        self.process = None
        return 0 if code in (0, 128 + signal.SIGTERM) else code

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
