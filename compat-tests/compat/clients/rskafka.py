"""rskafka adapter: InfluxData's pure-Rust Kafka client (crates.io `rskafka`, its own
implementation of the protocol, not librdkafka), through compat-tests/rust-client
(`rskafka-compat`, a member of the root Cargo workspace, built by
`cargo build --release --workspace` into target/release). It speaks CompatClient.java's
protocol (see compat-tests/rust-client/src/main.rs).

What rskafka cannot do, by design (its README: "No support for offset tracking, consumer groups,
transactions"):
- consumer groups: no JoinGroup/SyncGroup/Heartbeat/OffsetCommit, so every group cell is n/a;
- an idempotent producer: its produce requests carry no producer id (InitProducerId is never
  sent), so idempotent-1k is n/a;
- header lists: a record's headers are a map from name to bytes, so it can neither produce nor
  read back duplicate header names or null header values. Its decoder even rejects a fetched
  record that has a null header value (the whole fetch fails), so it is given, as writer and as
  reader, only messages whose headers have distinct names in name order (header_mode "unique").
"""
import os

from . import ClientError
from .subprocess_client import SubprocessClient

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class RskafkaClient(SubprocessClient):
    name = "rskafka"
    timestamps = True
    header_mode = "unique"
    # No consumer groups at all (`unsupported` below): every group capability is absent.
    manual_commit = static_membership = cooperative = kip848 = False
    produce_offsets = True
    unsupported = {
        "idempotent": "rskafka has no idempotent producer (its produce requests carry no producer id)",
        "groups": "rskafka has no consumer groups (no JoinGroup/SyncGroup, no offset commits)",
    }

    def __init__(self, bootstrap, binary=None):
        self.bootstrap = bootstrap
        # run_compat.py passes the one beside the broker binary (the same target/release).
        self.binary = binary or os.path.join(REPO, "target", "release", "rskafka-compat")
        if not os.access(self.binary, os.X_OK):
            raise ClientError(f"{self.binary} not built (cargo build --release --workspace)")

    def _prefix(self):
        return [self.binary, self.bootstrap]

    def produce(self, topic, msgs, compression=None, idempotent=False):
        if idempotent:
            raise ClientError(self.unsupported["idempotent"])
        for i, m in enumerate(msgs):
            names = [k for k, _ in m.headers]
            if len(set(names)) != len(names) or any(v is None for _, v in m.headers):
                raise ClientError(f"message {i}: rskafka cannot produce duplicate header names or null "
                                  f"header values: {m.headers}")
        return super().produce(topic, msgs, compression=compression)

    def group_member(self, name, group, topic, partitions, **opts):
        raise ClientError(self.unsupported["groups"])
