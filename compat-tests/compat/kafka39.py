"""Apache Kafka 3.9.2's jars, fetched from Maven Central once (compat-tests/kafka39/pom.xml)
into target/kafka39-lib: shared by the suites that run a Kafka 3.9 broker or its tools."""
import os
import subprocess

COMPAT_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KAFKA_LIB = os.path.join(os.path.dirname(COMPAT_TESTS), "target", "kafka39-lib")


def fetch_kafka():
    if os.path.isdir(KAFKA_LIB) and any(f.startswith("kafka-tools-3.9") for f in os.listdir(KAFKA_LIB)):
        return
    print("fetching Apache Kafka 3.9 jars with Maven (once) ...", flush=True)
    subprocess.run(["mvn", "-q", "-B", "-f", os.path.join(COMPAT_TESTS, "kafka39", "pom.xml"),
                    "dependency:copy-dependencies", f"-DoutputDirectory={KAFKA_LIB}"], check=True)
