"""Java kafka-clients 4.x adapter: runs compat-tests/java's CompatClient as a subprocess and
reads its JSON lines (see CompatClient.java for the protocol)."""
import glob
import os

from ..group_member import Member
from . import ClientError
from .subprocess_client import SubprocessClient


class JavaClient(SubprocessClient):
    name = "java"
    timestamps = True
    header_mode = "full"
    produce_offsets = True
    idempotent_option = False  # Kafka's producer is idempotent by default (acks=all)
    manual_commit = True
    static_membership = True
    cooperative = True
    kip848 = True

    def __init__(self, bootstrap, java_dir):
        self.bootstrap = bootstrap
        classes = os.path.join(java_dir, "target", "classes")
        jars = sorted(glob.glob(os.path.join(java_dir, "target", "dependency", "*.jar")))
        if not os.path.exists(os.path.join(classes, "CompatClient.class")) or not jars:
            raise ClientError(f"CompatClient not built in {java_dir} (run scripts/install-deps.sh)")
        self.cp = ":".join([classes] + jars)

    def _prefix(self):
        return ["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx1g",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", self.cp,
                "CompatClient", self.bootstrap]

    def group_member(self, name, group, topic, partitions, **opts):
        """A subscribed KafkaConsumer in its own JVM (CompatClient `group`, GroupMember.java)."""
        level = os.environ.get("COMPAT_JAVA_LOG_LEVEL", "warn")  # e.g. info: the coordinator's join log
        argv = ["java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m",
                f"-Dorg.slf4j.simpleLogger.defaultLogLevel={level}", "-cp", self.cp,
                "CompatClient", self.bootstrap, "group", f"group={group}", f"topic={topic}",
                f"partitions={partitions}"] + [f"{k}={v}" for k, v in opts.items() if v is not None]
        return Member(name, argv)
