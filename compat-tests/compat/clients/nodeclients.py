"""The JavaScript clients: KafkaJS 2.x (`kafkajs`) and Confluent's librdkafka-based
@confluentinc/kafka-javascript (`confluent-js`), both through compat-tests/node/compat_client.js,
which speaks CompatClient.java's protocol (JSON lines on stdout; see the top of that file).
How each library does each command, and why a capability is what it is, is written at the top of
node/kafkajs_client.js and node/confluent_client.js."""
import json
import os
import subprocess

from . import ClientError
from .subprocess_client import SubprocessClient


class NodeClient(SubprocessClient):
    lib = None
    timestamps = True
    produce_offsets = True
    manual_commit = True

    def __init__(self, bootstrap, node_dir):
        self.bootstrap = bootstrap
        self.script = os.path.join(node_dir, "compat_client.js")
        if not os.path.isdir(os.path.join(node_dir, "node_modules")):
            raise ClientError(f"{node_dir}/node_modules missing (run scripts/install-deps.sh)")
        r = subprocess.run(["node", "-e", f"require({json.dumps(self.module)})"], cwd=node_dir,
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise ClientError(f"node cannot load {self.module}: {r.stderr.decode(errors='replace')[-800:]}")

    def _prefix(self):
        return ["node", self.script, self.lib, self.bootstrap]


class KafkaJSClient(NodeClient):
    name = "kafkajs"
    lib = "kafkajs"
    module = "kafkajs"
    # Null header values: KafkaJS's record encoder throws on them (Buffer.byteLength(null)).
    header_mode = "nonull"
    # Per-message offsets are derived from each partition's baseOffset: exact, since KafkaJS
    # sends the messages of one send() for one partition as one record batch (kafkajs_client.js).
    produce_offsets = True
    static_membership = False   # no group.instance.id in KafkaJS
    cooperative = False         # only its own eager round-robin assigner
    kip848 = False


class ConfluentJSClient(NodeClient):
    name = "confluent-js"
    lib = "confluent-js"
    module = "@confluentinc/kafka-javascript"
    # Null header values: the binding rejects them ("Header value must be a string or buffer").
    header_mode = "nonull"
    static_membership = True
    cooperative = True          # librdkafka's cooperative-sticky assignor
    kip848 = True               # librdkafka's group.protocol=consumer
