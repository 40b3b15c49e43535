"""Go adapters: franz-go (kgo + kadm) and sarama, both in one binary built from compat-tests/go
(`compat-go <lib> <bootstrap> <command> key=value...`, the protocol of CompatClient.java; see
compat-tests/go/main.go). Each call is one process; JSON lines on stdout."""
import os

from . import ClientError
from .subprocess_client import SubprocessClient


class GoClient(SubprocessClient):
    lib = None                 # the binary's first argument
    timestamps = True
    header_mode = "full"       # null header values round-trip (both encode a nil []byte as -1)
    produce_offsets = True
    # Group capabilities read by compat/group_scenarios.py (both libraries commit on command and
    # have static members; the subclasses say which protocols they speak).
    manual_commit = True
    static_membership = True
    cooperative = False
    kip848 = False

    def __init__(self, bootstrap, go_dir):
        self.bootstrap = bootstrap
        self.binary = os.path.join(go_dir, "bin", "compat-go")
        if not os.access(self.binary, os.X_OK):
            raise ClientError(f"{self.binary} not built (run scripts/install-deps.sh)")

    def _prefix(self):
        return [self.binary, self.lib, self.bootstrap]


class FranzGoClient(GoClient):
    """franz-go: kgo's producer and group consumer, kadm for the admin side. Classic groups use
    the range balancer (franz-go's own default is cooperative-sticky) unless a scenario asks for
    cooperative-sticky; `protocol=consumer` is kgo.ServerSideBalancer (KIP-848)."""
    name = "franz-go"
    lib = "franz-go"
    cooperative = True
    kip848 = True


class SaramaClient(GoClient):
    """sarama: AsyncProducer, Consumer, ConsumerGroup (range by default, cooperative-sticky on
    request), ClusterAdmin. No KIP-848 consumer."""
    name = "sarama"
    lib = "sarama"
    cooperative = True
    kip848 = False
