"""The Spark engine (`engine: spark`): the session the data steps run their jobs in, and the checks made before
any step starts (a Java runtime, a reachable spark.master)."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.core.config import Settings, SparkConfig
from pipelines.core.errors import PipelineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DATA_ENGINE_STAGES = ("raw_dataset", "validated_dataset", "data_drift", "dataset_splits")  # what `engine` runs
JAVA_PACKAGE = "openjdk-17-jre-headless"  # Debian's; Spark 4 needs Java 17 or later
MIN_JAVA = 17
CONNECT_TIMEOUT_S = 3.0
_QUIET = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
          "spark.sql.session.timeZone": "UTC", "spark.sql.execution.arrow.pyspark.enabled": "true"}


def java_command() -> Path:
    """The java that pyspark starts: $JAVA_HOME/bin/java when JAVA_HOME is set, else `java` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        java = Path(home) / "bin" / "java"
        if not (java.is_file() and os.access(java, os.X_OK)):
            raise PipelineError(f"engine spark: no Java runtime: JAVA_HOME={home} has no bin/java (install "
                                f"{JAVA_PACKAGE} or point JAVA_HOME at a Java {MIN_JAVA}+ home)")
        return java
    found = shutil.which("java")
    if found is None:
        raise PipelineError(f"engine spark: no Java runtime: `java` is not on PATH and JAVA_HOME is unset (install "
                            f"{JAVA_PACKAGE})")
    return Path(found)


def check_java() -> str:
    """The Java runtime's version line; a missing or too old one is one line naming it."""
    java = java_command()
    try:
        done = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise PipelineError(f"engine spark: cannot run {java} ({exc.strerror or exc})") from exc
    first = (done.stderr or done.stdout).strip().splitlines()[:1]
    match = re.search(r'version "(\d+)(?:\.(\d+))?', first[0] if first else "")
    if done.returncode != 0 or match is None:
        raise PipelineError(f"engine spark: {java} -version failed: {first[0] if first else 'no output'}")
    major = int(match.group(2)) if match.group(1) == "1" else int(match.group(1))  # 1.8 = Java 8
    if major < MIN_JAVA:
        raise PipelineError(f"engine spark: {java} is Java {major}; Spark 4 needs Java {MIN_JAVA} or later (install "
                            f"{JAVA_PACKAGE})")
    return first[0]


def master_addresses(master: str) -> list[tuple[str, int]]:
    """The host:port pairs a master URL names (none for local and yarn, which need no network check here)."""
    if master.startswith("spark://"):
        hosts = master.removeprefix("spark://").split(",")
        default = 7077
    elif master.startswith("k8s://"):
        url = master.removeprefix("k8s://")
        hosts, default = [url.split("://", 1)[1]], 443 if url.startswith("https") else 80
    else:
        return []
    pairs = []
    for host in hosts:
        name, _, port = host.rpartition(":") if ":" in host else (host, "", str(default))
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise PipelineError(f"spark.master: {master!r} has no valid port in {host!r}")
        pairs.append((name.strip("[]"), int(port)))
    return pairs


def check_master(master: str) -> None:
    """At least one of the master's addresses accepts a TCP connection (standby masters are listed together)."""
    problems = []
    for host, port in master_addresses(master):
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                return
        except OSError as exc:
            problems.append(exc.strerror or type(exc).__name__)
    if problems:
        raise PipelineError(f"spark.master: cannot reach {master} ({problems[0].lower()})")


def check_engine(settings: Settings) -> None:
    """Before any step starts: with `engine: spark`, pyspark, a Java runtime and a reachable master."""
    if settings.params.engine != "spark":
        return
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise PipelineError("engine spark: pyspark is not installed (pip install pyspark)") from exc
    check_java()
    check_master(settings.params.spark.master)


def spark_properties(config: SparkConfig) -> dict[str, str]:
    """Every property the session is built with: quiet defaults, then params (spark.conf wins)."""
    local = config.master.startswith("local")
    python = os.environ.get("PYSPARK_PYTHON", sys.executable)  # executors run the step's own environment
    return (_QUIET | {"spark.driver.memory": config.driver_memory, "spark.pyspark.python": python,
                      "spark.sql.shuffle.partitions": "4" if local else "200"} | config.conf)


# Spark's default log4j2 profile logs INFO to the console (and says so on stderr): warnings and errors only, less
# a wide plan's "truncated" note (GX's compound-uniqueness query names every column)
_LOG4J2 = """rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark %p %c{1}: %m%n%ex
logger.netty.name = org.apache.spark.network
logger.netty.level = error
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = error
logger.utils.name = org.apache.spark.util.Utils
logger.utils.level = error
logger.plans.name = org.apache.spark.sql.catalyst.util.SparkStringUtils
logger.plans.level = error
"""


def log_config() -> Path:
    """The log4j2 file the driver's JVM reads (written once per user, beside other temp files)."""
    target = Path(tempfile.gettempdir()) / f"mobile-mlops-spark-log4j2-{os.getuid()}.properties"
    if not target.is_file() or target.read_text() != _LOG4J2:
        tmp = target.with_name(f"{target.name}.{os.getpid()}")
        tmp.write_text(_LOG4J2)
        os.replace(tmp, target)
    return target


_SESSIONS: dict[tuple, SparkSession] = {}


def spark_session(settings: Settings) -> SparkSession:
    """The process's session for these params (built once: a JVM takes seconds to start), logs at WARN."""
    config = settings.params.spark
    properties = spark_properties(config)
    key = (config.master, tuple(sorted(properties.items())))
    session = _SESSIONS.get(key)
    if session is not None and session.sparkContext._jsc is not None:
        return session
    check_engine(settings)
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", properties["spark.pyspark.python"])  # what RDD jobs' workers read
    for other in list(_SESSIONS.values()):  # one SparkContext per process: params changed, so the old one goes
        other.stop()
    _SESSIONS.clear()
    properties.setdefault("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_config()}")
    builder = SparkSession.builder.master(config.master).appName(f"mobile-mlops {settings.params.release.model_name}")
    for name, value in properties.items():
        builder = builder.config(name, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    _SESSIONS[key] = session
    return session


def stop_sessions() -> None:
    """Stop the session this process built (tests; a long-lived worker keeps it)."""
    for session in _SESSIONS.values():
        session.stop()
    _SESSIONS.clear()
