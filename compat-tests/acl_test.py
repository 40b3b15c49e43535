#!/usr/bin/env python3
"""Kafka ACLs (the ZooKeeper-mode AclAuthorizer) end to end: kafka-acls.sh, CreateAcls /
DescribeAcls / DeleteAcls, what every client sees without and with ACLs, the znodes under
/kafka-acl*, and how fast a second broker applies a change.

Cluster: TWO brokers (ids 1 and 2) on one real ZooKeeper (scripts/zookeeper.sh, chroot /acltest),
each started from a Kafka-style server-<id>.properties written by this script (identical keys for
Kafka and gregor; --show-config prints them):
  listeners=INTERNAL://127.0.0.1:<p1>,SASL_PLAINTEXT://127.0.0.1:<p2>  (INTERNAL = PLAINTEXT, inter-broker)
  sasl.enabled.mechanisms=PLAIN, listener.name.sasl_plaintext.plain.sasl.jaas.config (admin, alice, bob, carol)
  authorizer.class.name=kafka.security.authorizer.AclAuthorizer
  super.users=User:admin;User:ANONYMOUS   allow.everyone.if.no.acl.found=false
Every client connects to SASL_PLAINTEXT with PLAIN as admin / alice / bob / carol.
`--kafka` runs Apache Kafka 3.9.2 (two JVMs, jars from compat-tests/kafka39/pom.xml into
target/kafka39-lib); `--broker PATH` runs `PATH server-<id>.properties --override metrics.port=0`.

Cases (--only NAME,...; each prints pass / FAIL / n/a per client; exit 1 on any FAIL):
  acl-command    kafka-acls.sh (kafka.admin.AclCommand, --bootstrap-server + --command-config as
                 admin): --add (allow Read, --consumer, --producer, prefixed, --deny-principal),
                 --list parsed field by field, --remove --force, then --list is empty
  topic-read     alice without ACLs: TOPIC_AUTHORIZATION_FAILED consuming, t absent from her
                 Metadata (raw Metadata v1 on each broker; admin sees t); after kafka-acls.sh adds
                 Read+Describe (+ group Read) she reads the exact records (offsets, keys, values,
                 headers) through broker 1 and broker 2; propagation to both brokers measured (raw
                 Metadata every 50 ms, bound 5 s, must be <= 1 s); after --remove she loses it on
                 both brokers. Clients: confluent-kafka, kafka-python, kcat, Java ConsoleConsumer.
  produce        no Write -> TOPIC_AUTHORIZATION_FAILED; with --producer ACLs the records arrive
                 (read back as admin)
  prefixed       Read/Describe on prefix "pre-" for bob: reads pre-1, not other-1
  deny           Allow All on d for User:*, Deny Read for bob: alice reads, bob refused
  group          topic Read but no group Read -> GROUP_AUTHORIZATION_FAILED (subscribe, commit)
  cluster        carol with no ACLs: CreateTopics, DescribeConfigs(broker), CreateAcls,
                 DescribeCluster, ListGroups
  transactional  Write on the topic, no TransactionalId ACL: init_transactions refused
  super-user     admin with no ACLs at all: create topic, produce, consume
  authorized-ops describe_topics / describe_cluster / describe_consumer_groups with
                 include_authorized_operations=True as alice: the exact operation sets
  znodes         /kafka-acl/Topic/<t>, /kafka-acl/Group/<g>, /kafka-acl-extended/prefixed/Topic/pre-,
                 /kafka-acl-changes, /kafka-acl-extended-changes (kazoo); removal of the last ACL
  config-znodes  kafka-configs.sh: SCRAM credentials and quotas of a user, a client, a user's
                 client, the default user and a name that needs sanitizing: /config/users,
                 /config/clients, /config/changes field by field (kazoo)
  admin-api      CreateAcls / DescribeAcls (ANY, MATCH filters) / DeleteAcls with confluent-kafka
                 and kafka-python

usage: compat-tests/acl_test.py (--kafka | --broker target/release/gregor) [--only NAME,...]
                                [--keep] [--show-config]

A run on Kafka takes ~1.5 minutes (2 cores); the cluster is up ~7 s after start.

What Kafka 3.9.2 does, as observed by this test (the reference for gregor):
  kafka-acls.sh (AclCommand over --bootstrap-server, i.e. CreateAcls / DescribeAcls / DeleteAcls)
  - --list --topic t prints, per resource pattern,
      Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t, patternType=LITERAL)`:
       \t(principal=User:carol, host=*, operation=WRITE, permissionType=ALLOW)
      \t(principal=User:bob, host=*, operation=READ, permissionType=ALLOW) ...
    in no particular order. It lists the LITERAL pattern t only: a PREFIXED pattern matching t is
    not shown (that needs --resource-pattern-type prefixed/match). After --remove --force the
    output is empty (no header line at all).
  - --consumer --topic t --group g = topic READ + DESCRIBE, group READ; --producer --topic t =
    topic WRITE + DESCRIBE + CREATE. --deny-principal with --deny-host 127.0.0.1 keeps the host.
  Metadata and reads (allow.everyone.if.no.acl.found=false)
  - A topic the principal may not DESCRIBE is left out of an all-topics Metadata response (no
    error entry); asked for by name it comes back with TOPIC_AUTHORIZATION_FAILED (29). The
    brokers are always listed. carol (no ACLs) sees both brokers and no topics at all (not even
    __consumer_offsets).
  - Consuming without READ: confluent-kafka subscribe -> KafkaError TOPIC_AUTHORIZATION_FAILED;
    (librdkafka's assign() without DESCRIBE just waits, and a consumer always looks up its
    group.id's coordinator: GROUP_AUTHORIZATION_FAILED if the group has no ACL, which the test
    skips when the group is not what it checks); kcat -C exits 1 with "% ERROR: Topic t error:
    Broker: Topic authorization failed"; Java ConsoleConsumer logs
    "TopicAuthorizationException: Not authorized to access topics: [t]" and exits 0;
    kafka-python 3.0.12 reads nothing and only logs "Topic t is not authorized for this client"
    (with DESCRIBE but not READ, e.g. the deny case, Fetch fails and it raises
    TopicAuthorizationFailedError).
  - Producing without WRITE: every record fails with TOPIC_AUTHORIZATION_FAILED (confluent-kafka
    delivery reports; kafka-python TopicAuthorizationFailedError; kcat "% Delivery failed for
    message: Broker: Topic authorization failed", exit 1). --producer gives WRITE but no READ.
  - READ implies DESCRIBE (alice with Read only appears in Metadata).
  - Prefixed READ/DESCRIBE on "pre-": pre-1 readable and listed; other-1 neither.
  - Deny wins: ALLOW ALL for User:* plus DENY READ for bob: bob's Fetch gets
    TOPIC_AUTHORIZATION_FAILED, but he still sees d in Metadata (error 0: DESCRIBE is allowed,
    a denied READ does not deny DESCRIBE) and may still WRITE; alice reads.
  - Group: no ACL on the group -> FindCoordinator GROUP_AUTHORIZATION_FAILED (30) (confluent
    subscribe error; kafka-python GroupAuthorizationFailedError). Group DESCRIBE only ->
    FindCoordinator passes, JoinGroup and OffsetCommit get GROUP_AUTHORIZATION_FAILED; an
    assigned consumer still fetches with topic READ.
  Cluster-level (carol, no ACLs)
  - CreateTopics -> TOPIC_AUTHORIZATION_FAILED (confluent and kafka-python), not CLUSTER_...
  - DescribeConfigs(BROKER 1) -> CLUSTER_AUTHORIZATION_FAILED (31).
  - CreateAcls -> CLUSTER_AUTHORIZATION_FAILED. DescribeAcls -> error 31 with the message
    "Request Request(processor=.., connectionId=.., session=.., listenerName=ListenerName(
    SASL_PLAINTEXT), securityProtocol=SASL_PLAINTEXT, buffer=null, envelope=None) is not
    authorized." (kafka-python ClusterAuthorizationFailedError); confluent-kafka 2.16 reports no
    error and an empty list.
  - DescribeCluster: both brokers, no authorized operations (None). ListGroups: an empty list,
    no error, while admin's lists cluster-g (groups are filtered by DESCRIBE).
  - init_transactions with transactional.id and topic WRITE but no TransactionalId ACL:
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) from FindCoordinator(TRANSACTION): confluent-kafka
    "Failed to find transaction coordinator: ...: Broker: Transactional Id authorization failed:
    Transactional Id authorization failed." (a fatal error).
  - Super user admin (no ACLs): everything; its cluster authorized_operations are exactly ALTER,
    ALTER_CONFIGS, CLUSTER_ACTION, CREATE, DESCRIBE, DESCRIBE_CONFIGS, IDEMPOTENT_WRITE (the 7
    operations valid on a cluster, not READ/WRITE/DELETE).
  authorized_operations (include_authorized_operations=True), alice with topic READ +
  ALTER_CONFIGS, group READ, cluster DESCRIBE:
  - topic {ALTER_CONFIGS, DESCRIBE, DESCRIBE_CONFIGS, READ} (READ implies DESCRIBE, ALTER_CONFIGS
    implies DESCRIBE_CONFIGS); cluster {DESCRIBE}; group {DESCRIBE, READ}. bob (nothing):
    describe_topics -> TOPIC_AUTHORIZATION_FAILED.
  ZooKeeper (paths under the chroot)
  - /kafka-acl/Topic/<t>, /kafka-acl/Group/<g>, /kafka-acl/Cluster/kafka-cluster (LITERAL);
    /kafka-acl-extended/prefixed/Topic/<prefix> (PREFIXED, never under /kafka-acl). Data, e.g.
      {"acls":[{"principal":"User:alice","permissionType":"Allow","host":"*","operation":"Read"},
               {"principal":"User:bob","permissionType":"Deny","host":"10.0.0.1","operation":"Write"}],
       "version":1}
    (compact JSON, "acls" before "version", entry keys principal, permissionType, host,
    operation; values capitalised like Read, Allow, Describe, IdempotentWrite).
  - Change notifications: persistent sequential nodes acl_changes_<10 digits>; under
    /kafka-acl-changes (literal) the data is "TOPIC:<t>" / "GROUP:<g>" (UPPER-case type, not
    "Topic:"); under /kafka-acl-extended-changes it is
    {"version":1,"resourceType":"TOPIC","name":"pre-","patternType":"PREFIXED"}. One node per
    changed resource per request (two ACLs on one topic in one CreateAcls: one node); removals
    write them too (DeleteAcls matching topic, group, cluster and a prefix: three literal + one
    extended).
  - When the last ACL of a resource is removed, Kafka deletes its znode (the type node, e.g.
    /kafka-acl/Topic, stays, empty). Removing one of two ACLs rewrites the znode with the other.
  /config (kafka-configs.sh over --bootstrap-server: AlterUserScramCredentials, AlterClientQuotas)
  - /config/users/<u>: {"version":1,"config":{"SCRAM-SHA-512":"salt=<b64>,stored_key=<b64>,
    server_key=<b64>,iterations=8192", ..., "producer_byte_rate":"1048576"}}: credentials and
    quotas share the user's znode. /config/clients/<c>, /config/users/<u>/clients/<c>,
    /config/users/<default> alike. Byte rates are stored as integers ("4096"),
    request_percentage as a double ("50.0"). A name is sanitized (URL-encoded, a space as %20):
    /config/users/zn%20user%40example. Each change writes /config/changes/config_change_<seq>
    {"version":2,"entity_path":"users/<u>"} (or clients/<c>, users/<u>/clients/<c>).
  Propagation
  - Broker 2 applies a change made through broker 1 (it watches the change nodes) 10-80 ms after
    CreateAcls / DeleteAcls returned, and < 15 ms after kafka-acls.sh returned (the JVM's exit
    hides most of it). The test requires <= 1 s (PROPAGATION_WANT_S), polling every 50 ms up to 5 s.
"""
import argparse
import json
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,  # noqa: E402
                                   AdminClient, ConfigResource, NewTopic, ResourcePatternType,
                                   ResourceType)
from confluent_kafka import TopicCollection  # noqa: E402

from compat.broker import free_port  # noqa: E402
from compat.kafka39 import KAFKA_LIB, fetch_kafka  # noqa: E402
from security_test import (CLIENT_LOG4J, LOG4J, Fail, NotApplicable, RawKafka, check,  # noqa: E402
                           eventually, kafka_tool)

USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
BROKER_IDS = (1, 2)
ZK_CHROOT = "/acltest"
PROPAGATION_BOUND_S = 5.0   # poll bound for a change to reach broker 2
PROPAGATION_WANT_S = 1.0    # what the issue asks for
CASES = ["acl-command", "topic-read", "produce", "prefixed", "deny", "group", "cluster", "transactional",
         "super-user", "authorized-ops", "znodes", "config-znodes", "admin-api"]


# ---------------------------------------------------------------------------------------------
# The cluster


def server_properties(broker_id, root, ports, zk):
    plain = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
             + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")
    addr = f"INTERNAL://127.0.0.1:{ports['INTERNAL']},SASL_PLAINTEXT://127.0.0.1:{ports['SASL_PLAINTEXT']}"
    return "\n".join([
        f"broker.id={broker_id}",
        f"log.dirs={os.path.join(root, f'data-{broker_id}')}",
        f"listeners={addr}",
        f"advertised.listeners={addr}",
        "listener.security.protocol.map=INTERNAL:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "inter.broker.listener.name=INTERNAL",
        "sasl.enabled.mechanisms=PLAIN",
        f"listener.name.sasl_plaintext.plain.sasl.jaas.config={plain}",
        "authorizer.class.name=kafka.security.authorizer.AclAuthorizer",
        "super.users=User:admin;User:ANONYMOUS",
        "allow.everyone.if.no.acl.found=false",
        f"zookeeper.connect={zk}",
        "num.partitions=1",
        "default.replication.factor=1",
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.num.partitions=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
    ]) + "\n"


class Node:
    def __init__(self, cluster, broker_id, args, zk, taken):
        self.id = broker_id
        self.kind = cluster.kind
        self.ports = {}
        for n in ("INTERNAL", "SASL_PLAINTEXT"):
            while True:
                p = free_port()
                if p not in taken:
                    taken.add(p)
                    self.ports[n] = p
                    break
        root = cluster.root
        self.props = os.path.join(root, f"server-{broker_id}.properties")
        with open(self.props, "w") as f:
            f.write(server_properties(broker_id, root, self.ports, zk))
        self.log_path = os.path.join(root, f"{self.kind}-{broker_id}.log")
        if args.kafka:
            log4j = os.path.join(root, f"log4j-{broker_id}.properties")
            with open(log4j, "w") as f:
                f.write(LOG4J.format(path=self.log_path))
            cmd = ["java", "-Xmx512m", "-Xms128m", "-XX:+UseSerialGC", "-cp", os.path.join(KAFKA_LIB, "*"),
                   f"-Dlog4j.configuration=file:{log4j}", "kafka.Kafka", self.props]
            out = open(self.log_path + ".out", "w")
        else:
            cmd = [os.path.abspath(args.broker), self.props, "--override", "metrics.port=0"]
            out = open(self.log_path, "w")
        env = dict(os.environ, NO_COLOR="1")
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    def address(self):
        return f"127.0.0.1:{self.ports['SASL_PLAINTEXT']}"

    def tail(self, n=30):
        text = ""
        for path in (self.log_path, self.log_path + ".out"):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    lines = [l for l in f if not re.match(r"\s+(\d+: |at /)", l)]
                    text += f"--- {path}\n" + "".join(lines[-n:])
        return text

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Cluster:
    """Two brokers (Kafka 3.9 or gregor) on one ZooKeeper."""

    def __init__(self, args, root):
        self.root = root
        self.kind = "kafka" if args.kafka else "gregor"
        self.zk_dir = os.path.join(root, "zk")
        self.nodes = []
        env = dict(os.environ, ZK_TICK_MS="500", ZK_FORCE_SYNC="no", ZK_OWNER_PID=str(os.getpid()))
        out = subprocess.run([os.path.join(REPO, "scripts/zookeeper.sh"), "start", self.zk_dir],
                             env=env, check=True, capture_output=True, text=True, timeout=60)
        self.zk = out.stdout.strip() + ZK_CHROOT
        self.t0 = time.time()
        taken = set()
        for i in BROKER_IDS:
            self.nodes.append(Node(self, i, args, self.zk, taken))
        self.client_props = {}
        for u, p in USERS.items():
            path = os.path.join(root, f"{u}.properties")
            with open(path, "w") as f:
                f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                        f'username="{u}" password="{p}";\n')
            self.client_props[u] = path
        self.client_log4j = os.path.join(root, "client-log4j.properties")
        with open(self.client_log4j, "w") as f:
            f.write(CLIENT_LOG4J)

    def node(self, broker_id):
        return self.nodes[broker_id - 1]

    def bootstrap(self, broker_id=None):
        if broker_id:
            return self.node(broker_id).address()
        return ",".join(n.address() for n in self.nodes)

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for n in self.nodes:
                if n.proc.poll() is not None:
                    raise RuntimeError(f"broker {n.id} exited with {n.proc.returncode}:\n{n.tail()}")
            try:
                for n in self.nodes:
                    for p in n.ports.values():
                        socket.create_connection(("127.0.0.1", p), timeout=1).close()
                ok = True
                for n in self.nodes:
                    md = admin_client(self, "admin", n.id).list_topics(timeout=5)
                    ok = ok and sorted(md.brokers) == list(BROKER_IDS)
                    last = f"broker {n.id} knows brokers {sorted(md.brokers)}"
                if ok:
                    return time.time() - self.t0
            except Exception as e:  # noqa: BLE001 - not up yet
                last = e
            time.sleep(0.5)
        raise RuntimeError(f"cluster not ready within {timeout}s (last: {last}):\n" +
                           "".join(n.tail() for n in self.nodes))

    def tail(self):
        return "".join(n.tail() for n in self.nodes)

    def close(self):
        for n in self.nodes:
            n.close()
        subprocess.run([os.path.join(REPO, "scripts/zookeeper.sh"), "stop", self.zk_dir],
                       capture_output=True, timeout=60)


# ---------------------------------------------------------------------------------------------
# Clients


def rd_conf(cluster, user, broker_id=None):
    return {"bootstrap.servers": cluster.bootstrap(broker_id), "security.protocol": "sasl_plaintext",
            "sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": USERS[user]}


def kp_conf(cluster, user, broker_id=None):
    return {"bootstrap_servers": cluster.bootstrap(broker_id), "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN", "sasl_plain_username": user, "sasl_plain_password": USERS[user]}


def kcat_base(cluster, user, broker_id=None):
    args = ["kcat", "-b", cluster.bootstrap(broker_id)]
    for k, v in rd_conf(cluster, user, broker_id).items():
        if k != "bootstrap.servers":
            args += ["-X", f"{k}={v}"]
    return args


_admins = {}


def admin_client(cluster, user, broker_id=None):
    key = (id(cluster), user, broker_id)
    if key not in _admins:
        _admins[key] = AdminClient(rd_conf(cluster, user, broker_id))
    return _admins[key]


def create_topic(cluster, topic, partitions=1):
    admin_client(cluster, "admin").create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    # Both brokers know it (metadata propagates from the controller).
    for n in cluster.nodes:
        eventually(f"{topic} in broker {n.id}'s metadata", 15,
                   lambda n=n: topic in raw_metadata(cluster, n.id, "admin")[1], 0.1)


def records(tag, n=3):
    return [(f"key-{tag}-{i}", f"value {i} of {tag} \u00e9", [("origin", tag), ("i", str(i))]) for i in range(n)]


def produce_confluent(cluster, user, topic, recs, timeout=20):
    """Returns [(error name or None, offset)] per record."""
    p = Producer({**rd_conf(cluster, user), "acks": "all", "message.timeout.ms": int(timeout * 1000), "retries": 0})
    acked = []
    for k, v, h in recs:
        p.produce(topic, key=k.encode(), value=v.encode(), headers=[(a, b.encode()) for a, b in h], partition=0,
                  on_delivery=lambda e, m: acked.append((e.name() if e else None, m.offset() if m else None)))
    p.flush(timeout + 5)
    return acked


def admin_produce(cluster, topic, recs):
    acked = produce_confluent(cluster, "admin", topic, recs)
    check(acked == [(None, i) for i in range(len(recs))], f"admin produce to {topic}: {acked}")


def expected(recs, base=0):
    return [(base + i, k, v, h) for i, (k, v, h) in enumerate(recs)]


def read_confluent(cluster, user, topic, count, group=None, broker_id=None, timeout=20):
    """(records, first error name or None). Assigned partition 0 from the beginning; a group id
    only if given (then offsets are committed)."""
    conf = {**rd_conf(cluster, user, broker_id), "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "group.id": group or f"acl-unused-{user}"}
    c = Consumer(conf)
    got, err = [], None
    try:
        if group:
            c.subscribe([topic])
        else:
            c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.time() + timeout
        while len(got) < count and time.time() < deadline and err is None:
            m = c.poll(0.3)
            if m is None:
                continue
            if m.error():
                if not group and m.error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
                    # librdkafka looks up the coordinator of its (unused) group.id even when
                    # assigned; Kafka refuses that: not what is being checked here.
                    continue
                err = m.error().name()
                break
            got.append((m.offset(), m.key().decode(), m.value().decode(),
                        [(a, b.decode()) for a, b in (m.headers() or [])]))
        if group and got and err is None:
            try:
                c.commit(asynchronous=False)
            except KafkaException as e:
                err = e.args[0].name()
    finally:
        c.close()
    return got, err


class _KpLog(logging.Handler):
    """kafka-python's ERROR log lines (it reports a topic refused in Metadata only there)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def __enter__(self):
        logger = logging.getLogger("kafka")
        self.saved = (logger.level, logger.propagate)
        logger.setLevel(logging.ERROR)
        logger.propagate = False
        logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        logger = logging.getLogger("kafka")
        logger.removeHandler(self)
        logger.setLevel(self.saved[0])
        logger.propagate = self.saved[1]


def read_kafka_python(cluster, user, topic, count, group=None, broker_id=None, timeout=15):
    """(records, error): the exception's class name, or else, if nothing was read, kafka-python's
    "Topic <t> is not authorized for this client" log line as "log: ..."."""
    with _KpLog() as kplog:
        got, err = _read_kafka_python(cluster, user, topic, count, group, broker_id, timeout)
    if err is None and not got:
        refused = [l for l in kplog.lines if "not authorized" in l]
        if refused:
            err = "log: " + refused[0]
    return got, err


def _read_kafka_python(cluster, user, topic, count, group, broker_id, timeout):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    c = KafkaConsumer(**kp_conf(cluster, user, broker_id), enable_auto_commit=False, group_id=group,
                      auto_offset_reset="earliest")
    got, err = [], None
    try:
        if group:
            c.subscribe([topic])
        else:
            tp = KTP(topic, 0)
            c.assign([tp])
            c.seek(tp, 0)
        deadline = time.time() + timeout
        while len(got) < count and time.time() < deadline:
            try:
                for batch in c.poll(timeout_ms=300).values():
                    for m in batch:
                        got.append((m.offset, m.key.decode(), m.value.decode(),
                                    [(a, b.decode()) for a, b in (m.headers or [])]))
            except Exception as e:  # noqa: BLE001 - the error is the result
                err = type(e).__name__
                break
        if group and got and err is None:
            try:
                c.commit()
            except Exception as e:  # noqa: BLE001 - the error is the result
                err = type(e).__name__
    finally:
        c.close()
    return got, err


def read_kcat(cluster, user, topic, count, broker_id=None, timeout=15):
    r = subprocess.run(kcat_base(cluster, user, broker_id) + ["-C", "-t", topic, "-p", "0", "-o", "beginning",
                                                              "-c", str(count), "-e", "-J", "-m", str(timeout)],
                       capture_output=True, timeout=timeout + 15)
    got = []
    for line in r.stdout.decode().splitlines():
        j = json.loads(line)
        h = j.get("headers") or []
        got.append((j["offset"], j["key"], j["payload"], [(h[i], h[i + 1]) for i in range(0, len(h), 2)]))
    errs = [l for l in r.stderr.decode(errors="replace").splitlines() if "ERROR" in l or "error" in l]
    return got, (re.sub(r"^%\d\|[\d.]+\|", "", errs[0]) if errs else None), r.returncode


def read_java(cluster, user, topic, count, group, broker_id=None, timeout_ms=15000):
    r = kafka_tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                   cluster.bootstrap(broker_id), "--topic", topic, "--group", group, "--from-beginning",
                   "--max-messages", str(count), "--timeout-ms", str(timeout_ms),
                   "--consumer.config", cluster.client_props[user],
                   "--property", "print.offset=true", "--property", "print.headers=true",
                   "--property", "print.key=true", extra_jvm=[f"-Dlog4j.configuration=file:{cluster.client_log4j}"])
    got = []
    for line in r.stdout.splitlines():
        if not line.startswith("Offset:"):
            continue
        off, hdrs, k, v = line.split("\t", 3)
        got.append((int(off[len("Offset:"):]), k, v,
                    [tuple(x.split(":", 1)) for x in hdrs.split(",")] if hdrs != "NO_HEADERS" else []))
    errs = [l.strip() for l in (r.stdout + r.stderr).splitlines() if "Exception" in l]
    return got, (errs[0] if errs else None), r.returncode


# ---------------------------------------------------------------------------------------------
# Raw Metadata v1 on one broker (so that the broker asked is known)


def raw_metadata(cluster, broker_id, user):
    """(brokers {id: port}, {topic: error code}) from Metadata v1 (all topics) on broker_id."""
    node = cluster.node(broker_id)
    conn = RawKafka(node, "SASL_PLAINTEXT", None)
    try:
        err, _ = conn.handshake("PLAIN")
        check(err == 0, f"SaslHandshake error {err}")
        err, msg, _ = conn.authenticate(f"\0{user}\0{USERS[user]}".encode())
        check(err == 0, f"SaslAuthenticate error {err} {msg}")
        r = conn.call(3, 1, struct.pack(">i", -1))
    finally:
        conn.close()
    pos = 0

    def i16():
        nonlocal pos
        pos += 2
        return struct.unpack(">h", r[pos - 2:pos])[0]

    def i32():
        nonlocal pos
        pos += 4
        return struct.unpack(">i", r[pos - 4:pos])[0]

    def s():
        nonlocal pos
        ln = i16()
        if ln < 0:
            return None
        pos += ln
        return r[pos - ln:pos].decode()
    brokers = {}
    for _ in range(i32()):
        bid = i32()
        s()  # host
        port = i32()
        s()  # rack
        brokers[bid] = port
    i32()  # controller
    topics = {}
    for _ in range(i32()):
        err, name = i16(), s()
        pos += 1  # is_internal
        for _ in range(i32()):
            i16(), i32(), i32()
            for _ in range(i32()):
                i32()
            for _ in range(i32()):
                i32()
        topics[name] = err
    return brokers, topics


# ---------------------------------------------------------------------------------------------
# kafka-acls.sh


def acl_cmd(cluster, *args, broker_id=None):
    t0 = time.time()
    r = kafka_tool("kafka.admin.AclCommand", "--bootstrap-server", cluster.bootstrap(broker_id),
                   "--command-config", cluster.client_props["admin"], *args,
                   extra_jvm=[f"-Dlog4j.configuration=file:{cluster.client_log4j}"])
    if r.returncode != 0:
        why = [l.strip() for l in (r.stdout + r.stderr).splitlines() if "Exception" in l or "Error" in l]
        raise Fail(f"kafka-acls.sh {' '.join(args)}: exit {r.returncode}: {' | '.join(why[:4]) or r.stderr[-800:]}")
    return r.stdout, time.time() - t0


LIST_RE = re.compile(r"Current ACLs for resource `ResourcePattern\(resourceType=(\w+), name=(.*?), "
                     r"patternType=(\w+)\)`:")
ENTRY_RE = re.compile(r"\(principal=(.*?), host=(.*?), operation=(\w+), permissionType=(\w+)\)")


def parse_list(out):
    """kafka-acls.sh --list output -> {(resourceType, name, patternType): {(principal, host, op, perm)}}."""
    res = {}
    heads = list(LIST_RE.finditer(out))
    for i, m in enumerate(heads):
        block = out[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(out)]
        entries = ENTRY_RE.findall(block)
        check(len(entries) == block.count("(principal="), f"unparsed --list entries in {block!r}")
        res[(m.group(1), m.group(2), m.group(3))] = set(entries)
    check(len(res) == out.count("Current ACLs for resource"), f"unparsed --list output {out!r}")
    return res


def acl(principal, op, perm="ALLOW", host="*"):
    return (principal, host, op, perm)


# ---------------------------------------------------------------------------------------------
# Cases. Each returns {client: note} (pass) or raises; a client entry may be NotApplicable.


class Ctx:
    def __init__(self, cluster, args):
        self.cluster = cluster
        self.args = args
        self.observed = {}   # what Kafka did, printed at the end


def case_acl_command(ctx):
    c = ctx.cluster
    t, g = "ac-t", "ac-g"
    create_topic(c, t)
    acl_cmd(c, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", t)
    acl_cmd(c, "--add", "--allow-principal", "User:bob", "--consumer", "--topic", t, "--group", g)
    acl_cmd(c, "--add", "--allow-principal", "User:carol", "--producer", "--topic", t)
    acl_cmd(c, "--add", "--allow-principal", "User:alice", "--operation", "Describe",
            "--resource-pattern-type", "prefixed", "--topic", "ac-")
    acl_cmd(c, "--add", "--deny-principal", "User:carol", "--deny-host", "127.0.0.1", "--operation", "Read",
            "--topic", t)
    out, el = acl_cmd(c, "--list", "--topic", t)
    got = parse_list(out)
    want_t = {acl("User:alice", "READ"), acl("User:bob", "READ"), acl("User:bob", "DESCRIBE"),
              acl("User:carol", "WRITE"), acl("User:carol", "DESCRIBE"), acl("User:carol", "CREATE"),
              acl("User:carol", "READ", "DENY", "127.0.0.1")}
    check(got.get(("TOPIC", t, "LITERAL")) == want_t, f"--list --topic {t}: {got}\n{out}")
    # --list --topic t shows the literal pattern t only, not the prefixed "ac-" that matches t.
    check(set(got) == {("TOPIC", t, "LITERAL")}, f"--list resources {sorted(got)}")
    ctx.observed["acl-command list"] = out.strip()
    out, _ = acl_cmd(c, "--list", "--group", g)
    check(parse_list(out) == {("GROUP", g, "LITERAL"): {acl("User:bob", "READ")}}, f"--list --group: {out}")
    out, _ = acl_cmd(c, "--list", "--resource-pattern-type", "prefixed", "--topic", "ac-")
    check(parse_list(out) == {("TOPIC", "ac-", "PREFIXED"): {acl("User:alice", "DESCRIBE")}},
          f"--list prefixed: {out}")
    # The whole cluster's list (no resource) holds them all.
    out, _ = acl_cmd(c, "--list")
    allr = parse_list(out)
    check(allr.get(("TOPIC", t, "LITERAL")) == want_t and ("GROUP", g, "LITERAL") in allr, f"--list: {allr}")
    acl_cmd(c, "--remove", "--force", "--topic", t)
    acl_cmd(c, "--remove", "--force", "--group", g)
    acl_cmd(c, "--remove", "--force", "--resource-pattern-type", "prefixed", "--topic", "ac-")
    out, _ = acl_cmd(c, "--list", "--topic", t)
    check(parse_list(out) == {}, f"--list after --remove: {out!r}")
    ctx.observed["acl-command list after remove"] = out.strip() or "(empty output)"
    out, _ = acl_cmd(c, "--list", "--group", g)
    check(parse_list(out) == {}, f"--list --group after --remove: {out!r}")
    return {"java": f"add x5, list (7 entries on {t}; group; prefixed; all), remove; one call {el:.1f}s"}


def metadata_topics(cluster, broker_id, user):
    return raw_metadata(cluster, broker_id, user)[1]


def case_topic_read(ctx):
    c = ctx.cluster
    t, g = "read-t", "read-g"
    create_topic(c, t)
    recs = records("read")
    admin_produce(c, t, recs)
    want = expected(recs)
    notes = {}
    # Her groups first (a consumer needs one; prefixed: one group per client, as a group remembers
    # its offsets), nothing on the topic.
    acl_cmd(c, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--resource-pattern-type",
            "prefixed", "--group", g)
    for b in BROKER_IDS:
        check(t not in metadata_topics(c, b, "alice"), f"alice sees {t} in broker {b}'s metadata")
        check(metadata_topics(c, b, "admin").get(t) == 0, f"admin does not see {t} on broker {b}")
    md = admin_client(c, "alice").list_topics(timeout=10)
    check(t not in md.topics, f"alice's list_topics shows {t}")
    md = admin_client(c, "alice").list_topics(topic=t, timeout=10)
    ctx.observed["metadata for the named topic, alice"] = md.topics[t].error.name() if md.topics[t].error else "no error"
    check(md.topics[t].error is not None and md.topics[t].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
          f"list_topics({t}) as alice: {md.topics[t].error}")
    got, err = read_confluent(c, "alice", t, len(recs), group=g + "-confluent", timeout=10)
    check(got == [] and err == "TOPIC_AUTHORIZATION_FAILED", f"confluent without ACL: {got} {err}")
    notes["confluent"] = "subscribe: TOPIC_AUTHORIZATION_FAILED"
    got, err = read_kafka_python(c, "alice", t, len(recs), group=g + "-kp", timeout=8)
    check(got == [] and err == f"log: Topic {t} is not authorized for this client", f"kafka-python without ACL: {got} {err}")
    notes["kafka-python"] = f"subscribe: nothing read, {err!r}"
    got, err, rc = read_kcat(c, "alice", t, len(recs), timeout=10)
    ctx.observed["kcat without Read"] = f"exit {rc}: {err}"
    check(got == [] and err and "Topic authorization failed" in err, f"kcat without ACL: exit {rc} {got} {err}")
    notes["kcat"] = err
    got, err, rc = read_java(c, "alice", t, len(recs), g + "-java", timeout_ms=8000)
    ctx.observed["Java ConsoleConsumer without Read"] = f"exit {rc}: {err}"
    check(got == [] and err and "TopicAuthorizationException" in err, f"java without ACL: exit {rc} {got} {err}")
    notes["java"] = err[:120]

    # Add Read (+ Describe) on t and Read on g; time broker 2's view.
    _, el = acl_cmd(c, "--add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe",
                    "--topic", t, broker_id=1)
    t_done = time.time()
    # The Admin client sends CreateAcls to either broker: the other one learns of it through
    # ZooKeeper. Both must show t within the bound.
    prop = eventually(f"{t} in alice's metadata on both brokers", PROPAGATION_BOUND_S,
                      lambda: (time.time() - t_done)
                      if all(metadata_topics(c, b, "alice").get(t) == 0 for b in BROKER_IDS) else None, 0.05)
    ctx.observed["propagation to both brokers after add (s)"] = f"{prop:.3f}"
    check(prop <= PROPAGATION_WANT_S, f"the brokers applied the ACL only after {prop:.2f}s")
    for b in BROKER_IDS:
        got, err = read_confluent(c, "alice", t, len(recs), broker_id=b)
        check((got, err) == (want, None), f"confluent via broker {b}: {got} {err}")
    got, err = read_confluent(c, "alice", t, len(recs), group=g + "-confluent")
    check((got, err) == (want, None), f"confluent in group {g}: {got} {err}")
    notes["confluent"] += f" -> reads {len(want)} records via brokers 1, 2 and in group {g}"
    for b in BROKER_IDS:
        got, err = read_kafka_python(c, "alice", t, len(recs), broker_id=b)
        check((got, err) == (want, None), f"kafka-python via broker {b}: {got} {err}")
    got, err = read_kafka_python(c, "alice", t, len(recs), group=g + "-kp")
    check((got, err) == (want, None), f"kafka-python in group {g}: {got} {err}")
    notes["kafka-python"] += " -> reads via brokers 1, 2 and in the group"
    for b in BROKER_IDS:
        got, err, rc = read_kcat(c, "alice", t, len(recs), broker_id=b)
        check(got == want and rc == 0, f"kcat via broker {b}: exit {rc} {got} {err}")
    notes["kcat"] += " -> reads via brokers 1, 2"
    got, err, rc = read_java(c, "alice", t, len(recs), g + "-java", broker_id=2)
    check(got == want and rc == 0, f"java via broker 2: exit {rc} {got} {err}")
    notes["java"] += " -> reads in the group via broker 2"

    # Remove: lost on both brokers.
    acl_cmd(c, "--remove", "--force", "--allow-principal", "User:alice", "--operation", "Read", "--operation",
            "Describe", "--topic", t)
    t_done = time.time()
    gone = eventually(f"{t} gone from alice's metadata on both brokers", PROPAGATION_BOUND_S,
                      lambda: (time.time() - t_done)
                      if all(t not in metadata_topics(c, b, "alice") for b in BROKER_IDS) else None, 0.05)
    ctx.observed["propagation to both brokers after remove (s)"] = f"{gone:.3f}"
    check(gone <= PROPAGATION_WANT_S, f"the brokers applied the removal only after {gone:.2f}s")
    for b in BROKER_IDS:
        got, err = read_confluent(c, "alice", t, len(recs), group=g + "-confluent", broker_id=b, timeout=10)
        check(got == [] and err == "TOPIC_AUTHORIZATION_FAILED", f"confluent via broker {b} after remove: {got} {err}")
    got, err = read_kafka_python(c, "alice", t, len(recs), group=g + "-kp", timeout=8)
    check(got == [] and err == f"log: Topic {t} is not authorized for this client", f"kafka-python after remove: {got} {err}")
    # The same through CreateAcls / DeleteAcls answered by broker 1 (the JVM's exit above adds an
    # unknown delay between the ZooKeeper write and the tool returning).
    a1 = admin_client(c, "admin", 1)
    times = {}
    for step, visible in (("create", True), ("delete", False)):
        if visible:
            list(a1.create_acls([topic_acl("User:alice", t, AclOperation.DESCRIBE)]).values())[0].result(20)
        else:
            list(a1.delete_acls([AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, "User:alice",
                                                  None, AclOperation.ANY, AclPermissionType.ANY)]).values())[0].result(20)
        t_done = time.time()
        times[step] = eventually(f"both brokers apply {step}", PROPAGATION_BOUND_S,
                                 lambda: (time.time() - t_done)
                                 if all((t in metadata_topics(c, b, "alice")) == visible for b in BROKER_IDS)
                                 else None, 0.05)
    ctx.observed["propagation to both brokers after CreateAcls / DeleteAcls (s)"] = (
        f"{times['create']:.3f} / {times['delete']:.3f}")
    check(max(times.values()) <= PROPAGATION_WANT_S, f"the brokers applied CreateAcls/DeleteAcls after {times}")
    acl_cmd(c, "--remove", "--force", "--topic", t)
    acl_cmd(c, "--remove", "--force", "--resource-pattern-type", "prefixed", "--group", g)
    notes["raw-metadata"] = (f"both brokers show {t} to alice {prop * 1000:.0f} ms after kafka-acls.sh --add "
                             f"returned (the call took {el:.1f}s), hide it {gone * 1000:.0f} ms after --remove; "
                             f"after CreateAcls / DeleteAcls: {times['create'] * 1000:.0f} / "
                             f"{times['delete'] * 1000:.0f} ms")
    return notes


def create_acls(cluster, bindings):
    """CreateAcls as admin, then PROPAGATION_WANT_S for every broker to apply them (the bound the
    test holds a broker to; topic-read measures it)."""
    fs = admin_client(cluster, "admin").create_acls(bindings)
    for b, f in fs.items():
        f.result(20)
    time.sleep(PROPAGATION_WANT_S)


def delete_acls(cluster, filters):
    fs = admin_client(cluster, "admin").delete_acls(filters)
    return {f: fut.result(20) for f, fut in fs.items()}


ANY_ACL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                           AclPermissionType.ANY)


def topic_acl(principal, topic, op, perm=AclPermissionType.ALLOW, pattern=ResourcePatternType.LITERAL, host="*"):
    return AclBinding(ResourceType.TOPIC, topic, pattern, principal, host, op, perm)


def group_acl(principal, group, op, perm=AclPermissionType.ALLOW):
    return AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL, principal, "*", op, perm)


def wait_acls_applied(cluster, user, topic, visible=True):
    """Both brokers show (or hide) `topic` to `user`."""
    for b in BROKER_IDS:
        eventually(f"{topic} {'visible' if visible else 'hidden'} to {user} on broker {b}", PROPAGATION_BOUND_S,
                   lambda b=b: (topic in metadata_topics(cluster, b, user)) == visible, 0.05)


def case_produce(ctx):
    c = ctx.cluster
    t = "prod-t"
    create_topic(c, t)
    recs = records("prod")
    notes = {}
    acked = produce_confluent(c, "alice", t, recs, timeout=10)
    check(acked == [("TOPIC_AUTHORIZATION_FAILED", None)] * len(recs) or
          [a[0] for a in acked] == ["TOPIC_AUTHORIZATION_FAILED"] * len(recs), f"confluent without Write: {acked}")
    notes["confluent"] = "TOPIC_AUTHORIZATION_FAILED per record"
    from kafka import KafkaProducer
    p = KafkaProducer(**kp_conf(c, "alice"), acks="all", max_block_ms=8000, retries=0)
    try:
        try:
            p.send(t, key=b"k", value=b"v", partition=0).get(timeout=10)
            raise Fail("kafka-python produced without Write")
        except Fail:
            raise
        except Exception as e:  # noqa: BLE001 - the error is the result
            kp_err = type(e).__name__
    finally:
        p.close(timeout=5)
    check(kp_err == "TopicAuthorizationFailedError", f"kafka-python without Write: {kp_err}")
    notes["kafka-python"] = kp_err
    r = subprocess.run(kcat_base(c, "alice") + ["-P", "-t", t, "-p", "0", "-m", "10"], input=b"x\n",
                       capture_output=True, timeout=30)
    kc = r.stderr.decode(errors="replace")
    check("Topic authorization failed" in kc, f"kcat -P without Write: exit {r.returncode} {kc[-500:]}")
    notes["kcat"] = f"exit {r.returncode}: " + next(l for l in kc.splitlines() if "authorization" in l)[-100:]
    acl_cmd(c, "--add", "--allow-principal", "User:alice", "--producer", "--topic", t)
    for b in BROKER_IDS:
        eventually(f"alice may write {t} (broker {b})", PROPAGATION_BOUND_S,
                   lambda b=b: t in metadata_topics(c, b, "alice"), 0.05)
    acked = produce_confluent(c, "alice", t, recs)
    check(acked == [(None, i) for i in range(len(recs))], f"confluent with --producer: {acked}")
    p = KafkaProducer(**kp_conf(c, "alice"), acks="all")
    try:
        off = p.send(t, key=b"kp-key", value=b"kp-value", partition=0).get(timeout=20).offset
    finally:
        p.close(timeout=5)
    check(off == len(recs), f"kafka-python offset {off}")
    got, err = read_confluent(c, "admin", t, len(recs) + 1)
    check(got == expected(recs) + [(len(recs), "kp-key", "kp-value", [])] and err is None, f"admin reads {got} {err}")
    # alice has no Read with --producer.
    got, err = read_confluent(c, "alice", t, 1, timeout=10)
    check(got == [] and err == "TOPIC_AUTHORIZATION_FAILED", f"alice reads with --producer only: {got} {err}")
    notes["confluent"] += "; with --producer: offsets 0-2 (admin reads them), still no Read"
    notes["kafka-python"] += "; with --producer: offset 3"
    acl_cmd(c, "--remove", "--force", "--topic", t)
    return notes


def case_prefixed(ctx):
    c = ctx.cluster
    create_topic(c, "pre-1")
    create_topic(c, "other-1")
    recs = records("pre")
    admin_produce(c, "pre-1", recs)
    admin_produce(c, "other-1", recs)
    acl_cmd(c, "--add", "--allow-principal", "User:bob", "--operation", "Read", "--operation", "Describe",
            "--resource-pattern-type", "prefixed", "--topic", "pre-")
    create_acls(c, [group_acl("User:bob", "pre-g", AclOperation.READ)])
    wait_acls_applied(c, "bob", "pre-1")
    notes = {}
    got, err = read_confluent(c, "bob", "pre-1", len(recs))
    check((got, err) == (expected(recs), None), f"bob pre-1: {got} {err}")
    md = admin_client(c, "bob").list_topics(topic="other-1", timeout=10)
    err = md.topics["other-1"].error
    check(err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, f"bob other-1: {err}")
    topics = metadata_topics(c, 1, "bob")
    check("pre-1" in topics and "other-1" not in topics, f"bob's metadata: {sorted(topics)}")
    notes["confluent"] = "reads pre-1; Metadata(other-1) TOPIC_AUTHORIZATION_FAILED; all-topics Metadata shows pre-1 only"
    got, err = read_kafka_python(c, "bob", "pre-1", len(recs))
    check((got, err) == (expected(recs), None), f"kafka-python bob pre-1: {got} {err}")
    got, err = read_kafka_python(c, "bob", "other-1", 1, group="pre-g", timeout=8)
    check(got == [] and err == "log: Topic other-1 is not authorized for this client", f"kafka-python bob other-1: {got} {err}")
    got, err = read_confluent(c, "bob", "other-1", 1, group="pre-g", timeout=10)
    check(got == [] and err == "TOPIC_AUTHORIZATION_FAILED", f"confluent bob subscribes other-1: {got} {err}")
    notes["kafka-python"] = "reads pre-1; subscribe other-1: nothing read, logs 'not authorized'"
    acl_cmd(c, "--remove", "--force", "--resource-pattern-type", "prefixed", "--topic", "pre-")
    return notes


def case_deny(ctx):
    c = ctx.cluster
    t = "deny-d"
    create_topic(c, t)
    recs = records("deny")
    admin_produce(c, t, recs)
    create_acls(c, [topic_acl("User:*", t, AclOperation.ALL),
                    topic_acl("User:bob", t, AclOperation.READ, AclPermissionType.DENY)])
    wait_acls_applied(c, "alice", t)
    notes = {}
    got, err = read_confluent(c, "alice", t, len(recs))
    check((got, err) == (expected(recs), None), f"alice reads {t}: {got} {err}")
    got, err = read_confluent(c, "bob", t, 1, timeout=10)
    check(got == [] and err == "TOPIC_AUTHORIZATION_FAILED", f"bob reads {t}: {got} {err}")
    bob_md = {b: metadata_topics(c, b, "bob").get(t) for b in BROKER_IDS}
    ctx.observed["deny Read, allow All: bob's Metadata error for d"] = bob_md
    check(bob_md == {1: 0, 2: 0}, f"bob's metadata for {t}: {bob_md}")
    notes["confluent"] = ("alice reads; bob TOPIC_AUTHORIZATION_FAILED reading, but sees d in Metadata "
                          "(Describe allowed) and may write")
    got, err = read_kafka_python(c, "bob", t, 1, timeout=8)
    check(got == [] and err == "TopicAuthorizationFailedError", f"kafka-python bob: {got} {err}")
    got, err = read_kafka_python(c, "alice", t, len(recs))
    check((got, err) == (expected(recs), None), f"kafka-python alice: {got} {err}")
    notes["kafka-python"] = "alice reads; bob TopicAuthorizationFailedError"
    # bob may still write (All allows Write; only Read is denied).
    acked = produce_confluent(c, "bob", t, records("deny-bob", 1))
    check(acked == [(None, len(recs))], f"bob writes {t}: {acked}")
    delete_acls(c, [AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, None, None,
                                     AclOperation.ANY, AclPermissionType.ANY)])
    return notes


def case_group(ctx):
    c = ctx.cluster
    t, g = "grp-t", "grp-g"
    create_topic(c, t)
    recs = records("grp")
    admin_produce(c, t, recs)
    create_acls(c, [topic_acl("User:alice", t, AclOperation.READ)])
    wait_acls_applied(c, "alice", t)
    notes = {}
    # No ACL on the group at all: FindCoordinator is refused.
    got, err = read_confluent(c, "alice", t, len(recs), group=g, timeout=10)
    check(got == [] and err == "GROUP_AUTHORIZATION_FAILED", f"confluent subscribe, no group ACL: {got} {err}")
    got, err = read_kafka_python(c, "alice", t, len(recs), group=g, timeout=10)
    check(got == [] and err == "GroupAuthorizationFailedError", f"kafka-python subscribe, no group ACL: {got} {err}")
    # Describe on the group (FindCoordinator passes) but no Read: JoinGroup and OffsetCommit refused.
    create_acls(c, [group_acl("User:alice", g, AclOperation.DESCRIBE)])
    got, err = read_confluent(c, "alice", t, len(recs), group=g, timeout=10)
    check(got == [] and err == "GROUP_AUTHORIZATION_FAILED", f"confluent subscribe, group Describe only: {got} {err}")
    cons = Consumer({**rd_conf(c, "alice"), "group.id": g, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest"})
    try:
        cons.assign([TopicPartition(t, 0, 0)])
        got = []
        deadline = time.time() + 15
        while len(got) < len(recs) and time.time() < deadline:
            m = cons.poll(0.3)
            if m is not None and not m.error():
                got.append(m.offset())
        check(got == [0, 1, 2], f"assigned fetch: {got}")
        try:
            cons.commit(offsets=[TopicPartition(t, 0, 3)], asynchronous=False)
            raise Fail("commit succeeded without group Read")
        except KafkaException as e:
            commit_err = e.args[0].name()
    finally:
        cons.close()
    check(commit_err == "GROUP_AUTHORIZATION_FAILED", f"commit: {commit_err}")
    notes["confluent"] = ("no group ACL: subscribe GROUP_AUTHORIZATION_FAILED; group Describe only: subscribe "
                          "GROUP_AUTHORIZATION_FAILED, assign + fetch ok, commit GROUP_AUTHORIZATION_FAILED")
    got, err = read_kafka_python(c, "alice", t, len(recs), group=g, timeout=10)
    check(got == [] and err == "GroupAuthorizationFailedError", f"kafka-python subscribe, Describe only: {got} {err}")
    notes["kafka-python"] = "subscribe -> GroupAuthorizationFailedError (no group ACL; group Describe only)"
    return notes


def err_name(e):
    if isinstance(e, KafkaException):
        return e.args[0].name()
    return f"{type(e).__name__}: {e}"


def case_cluster(ctx):
    c = ctx.cluster
    a = admin_client(c, "carol")
    notes = {}
    # A group with committed offsets exists (admin's), so that ListGroups has something to hide.
    create_topic(c, "cluster-t")
    admin_produce(c, "cluster-t", records("cluster", 1))
    got, err = read_confluent(c, "admin", "cluster-t", 1, group="cluster-g")
    check(len(got) == 1 and err is None, f"admin reads in cluster-g: {got} {err}")
    admin_groups = [g.group_id for g in admin_client(c, "admin").list_consumer_groups().result(20).valid]
    check("cluster-g" in admin_groups, f"admin's list_consumer_groups: {admin_groups}")
    try:
        a.create_topics([NewTopic("carol-t", 1, 1)])["carol-t"].result(20)
        raise Fail("carol created a topic")
    except KafkaException as e:
        check(err_name(e) == "TOPIC_AUTHORIZATION_FAILED", f"create_topics: {e}")
    try:
        res = list(a.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")]).values())[0].result(20)
        raise Fail(f"carol described broker configs: {len(res)} entries")
    except KafkaException as e:
        check(err_name(e) == "CLUSTER_AUTHORIZATION_FAILED", f"describe_configs(broker): {e}")
    try:
        list(a.create_acls([topic_acl("User:carol", "x", AclOperation.READ)]).values())[0].result(20)
        raise Fail("carol created an ACL")
    except KafkaException as e:
        check(err_name(e) == "CLUSTER_AUTHORIZATION_FAILED", f"create_acls: {e}")
    try:
        r = list(a.describe_acls(ANY_ACL).result(20))
    except KafkaException as e:
        r = err_name(e)
    # Kafka answers error 31 (see kafka-python below); confluent-kafka 2.16 reports no error and
    # an empty list.
    check(r == [], f"carol describe_acls (confluent): {r}")
    dc = a.describe_cluster(include_authorized_operations=True).result(20)
    ctx.observed["carol describe_cluster"] = (sorted(n.id for n in dc.nodes), dc.authorized_operations)
    check(sorted(n.id for n in dc.nodes) == list(BROKER_IDS), f"describe_cluster nodes {dc.nodes}")
    check(not dc.authorized_operations, f"carol's cluster operations {dc.authorized_operations}")
    lg = a.list_consumer_groups().result(20)
    ctx.observed["carol list_consumer_groups"] = ([g.group_id for g in lg.valid], lg.errors)
    check(lg.valid == [] and lg.errors == [], f"list_consumer_groups: {lg.valid} {lg.errors}")
    md = a.list_topics(topic="cluster-t", timeout=10)
    check(md.topics["cluster-t"].error is not None and
          md.topics["cluster-t"].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, f"carol, cluster-t: {md.topics}")
    md = a.list_topics(timeout=10)
    check(sorted(md.brokers) == list(BROKER_IDS) and list(md.topics) == [], f"carol's metadata {sorted(md.topics)}")
    notes["confluent"] = ("CreateTopics TOPIC_AUTHORIZATION_FAILED, DescribeConfigs(broker) / CreateAcls "
                          "(DescribeAcls: no error, empty list); DescribeCluster: both brokers, no "
                          "operations; ListGroups: empty (admin sees cluster-g), no error; Metadata: brokers, no topics")
    from kafka.admin import KafkaAdminClient, NewTopic as KNewTopic
    ka = KafkaAdminClient(**kp_conf(c, "carol"))
    try:
        r = ka.create_topics([KNewTopic("carol-t2", 1, 1)])
        raise Fail(f"kafka-python create_topics: {r}")
    except Fail:
        raise
    except Exception as e:  # noqa: BLE001 - the error is the result
        check(type(e).__name__ == "TopicAuthorizationFailedError", f"kafka-python create_topics: {err_name(e)}")
    finally:
        ka.close()
    notes["kafka-python"] = "create_topics -> TopicAuthorizationFailedError"
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePatternFilter
    from kafka.admin import ResourceType as KRT
    ka = KafkaAdminClient(**kp_conf(c, "carol"))
    try:
        r = ka.describe_acls(ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                                       permission_type=ACLPermissionType.ANY,
                                       resource_pattern=ResourcePatternFilter(KRT.ANY, None, ACLResourcePatternType.ANY)))
        raise Fail(f"kafka-python: carol described ACLs: {r}")
    except Fail:
        raise
    except Exception as e:  # noqa: BLE001 - the error is the result
        ctx.observed["carol describe_acls (kafka-python)"] = err_name(e)
        # Kafka's text is its request's toString ("Request Request(processor=..) is not
        # authorized."), an implementation detail: the error code is what counts.
        check(type(e).__name__ == "ClusterAuthorizationFailedError", f"kafka-python describe_acls: {err_name(e)}")
    finally:
        ka.close()
    notes["kafka-python"] += "; describe_acls -> ClusterAuthorizationFailedError 'Request Request(...) is not authorized.'"
    return notes


def case_transactional(ctx):
    c = ctx.cluster
    t = "txn-t"
    create_topic(c, t)
    create_acls(c, [topic_acl("User:carol", t, AclOperation.WRITE)])
    wait_acls_applied(c, "carol", t)
    p = Producer({**rd_conf(c, "carol"), "transactional.id": "carol-txn", "transaction.timeout.ms": 10000})
    try:
        p.init_transactions(15)
        raise Fail("init_transactions succeeded without a TransactionalId ACL")
    except KafkaException as e:
        got = e.args[0]
    check(got.name() == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", f"init_transactions: {got.name()} {got.str()}")
    ctx.observed["init_transactions without TransactionalId ACL"] = f"{got.name()}: {got.str()}"
    delete_acls(c, [AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, None, None,
                                     AclOperation.ANY, AclPermissionType.ANY)])
    return {"confluent": f"{got.name()}: {got.str()}"}


def case_super_user(ctx):
    c = ctx.cluster
    t = "super-t"
    create_topic(c, t)
    recs = records("super")
    admin_produce(c, t, recs)
    got, err = read_confluent(c, "admin", t, len(recs), group="super-g")
    check((got, err) == (expected(recs), None), f"admin reads: {got} {err}")
    dc = admin_client(c, "admin").describe_cluster(include_authorized_operations=True).result(20)
    ops = sorted(o.name for o in dc.authorized_operations or [])
    ctx.observed["admin's cluster authorized_operations"] = ops
    check(ops == ["ALTER", "ALTER_CONFIGS", "CLUSTER_ACTION", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS",
                  "IDEMPOTENT_WRITE"], f"admin's cluster operations {ops}")
    return {"confluent": "create topic, produce 3, consume 3 in a group; cluster operations = all 7"}


def case_authorized_ops(ctx):
    c = ctx.cluster
    t, g = "ops-t", "ops-g"
    create_topic(c, t)
    admin_produce(c, t, records("ops"))
    create_acls(c, [topic_acl("User:alice", t, AclOperation.READ),
                    topic_acl("User:alice", t, AclOperation.ALTER_CONFIGS),
                    group_acl("User:alice", g, AclOperation.READ),
                    AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:alice", "*",
                               AclOperation.DESCRIBE, AclPermissionType.ALLOW)])
    wait_acls_applied(c, "alice", t)
    got, err = read_confluent(c, "alice", t, 3, group=g)   # the group exists (empty, offsets committed)
    check(err is None and len(got) == 3, f"alice reads in group: {got} {err}")
    a = admin_client(c, "alice")
    d = a.describe_topics(TopicCollection([t]), include_authorized_operations=True)[t].result(20)
    topic_ops = sorted(o.name for o in d.authorized_operations)
    dc = a.describe_cluster(include_authorized_operations=True).result(20)
    cluster_ops = sorted(o.name for o in dc.authorized_operations or [])
    dg = a.describe_consumer_groups([g], include_authorized_operations=True)[g].result(20)
    group_ops = sorted(o.name for o in dg.authorized_operations or [])
    ctx.observed["authorized_operations alice (topic Read+AlterConfigs, group Read, cluster Describe)"] = (
        f"topic {topic_ops}, cluster {cluster_ops}, group {group_ops}")
    check(topic_ops == ["ALTER_CONFIGS", "DESCRIBE", "DESCRIBE_CONFIGS", "READ"], f"topic ops {topic_ops}")
    check(cluster_ops == ["DESCRIBE"], f"cluster ops {cluster_ops}")
    check(group_ops == ["DESCRIBE", "READ"], f"group ops {group_ops}")
    # bob, nothing: describe_topics refused.
    try:
        admin_client(c, "bob").describe_topics(TopicCollection([t]), include_authorized_operations=True)[t].result(20)
        raise Fail("bob described the topic")
    except KafkaException as e:
        check(err_name(e) == "TOPIC_AUTHORIZATION_FAILED", f"bob describe_topics: {e}")
    delete_acls(c, [AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice", None,
                                     AclOperation.ANY, AclPermissionType.ANY)])
    return {"confluent": f"topic {topic_ops}; cluster {cluster_ops}; group {group_ops}; "
                         "bob describe_topics TOPIC_AUTHORIZATION_FAILED"}


def zk_client(cluster):
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=cluster.zk, timeout=10)
    zk.start(timeout=15)
    return zk


def case_znodes(ctx):
    c = ctx.cluster
    t, g = "zn-t", "zn-g"
    create_topic(c, t)
    zk = zk_client(c)
    try:
        before = set(zk.get_children("/kafka-acl-changes")) if zk.exists("/kafka-acl-changes") else set()
        before_x = (set(zk.get_children("/kafka-acl-extended-changes"))
                    if zk.exists("/kafka-acl-extended-changes") else set())
        create_acls(c, [topic_acl("User:alice", t, AclOperation.READ),
                        topic_acl("User:bob", t, AclOperation.WRITE, AclPermissionType.DENY, host="10.0.0.1")])
        create_acls(c, [group_acl("User:alice", g, AclOperation.READ)])
        create_acls(c, [topic_acl("User:carol", "zn-pre-", AclOperation.DESCRIBE,
                                  pattern=ResourcePatternType.PREFIXED)])
        create_acls(c, [AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:carol",
                                   "*", AclOperation.IDEMPOTENT_WRITE, AclPermissionType.ALLOW)])
        data, _ = zk.get(f"/kafka-acl/Topic/{t}")
        j = json.loads(data)
        ctx.observed[f"/kafka-acl/Topic/{t}"] = data.decode()
        check(set(j) == {"version", "acls"} and j["version"] == 1, f"topic znode {j}")
        check(sorted(j["acls"], key=json.dumps) == sorted([
            {"principal": "User:alice", "permissionType": "Allow", "operation": "Read", "host": "*"},
            {"principal": "User:bob", "permissionType": "Deny", "operation": "Write", "host": "10.0.0.1"}],
            key=json.dumps), f"topic znode acls {j['acls']}")
        data, _ = zk.get(f"/kafka-acl/Group/{g}")
        check(json.loads(data) == {"version": 1, "acls": [
            {"principal": "User:alice", "permissionType": "Allow", "operation": "Read", "host": "*"}]},
            f"group znode {data}")
        data, _ = zk.get("/kafka-acl-extended/prefixed/Topic/zn-pre-")
        ctx.observed["/kafka-acl-extended/prefixed/Topic/zn-pre-"] = data.decode()
        check(json.loads(data) == {"version": 1, "acls": [
            {"principal": "User:carol", "permissionType": "Allow", "operation": "Describe", "host": "*"}]},
            f"prefixed znode {data}")
        check(not zk.exists(f"/kafka-acl-extended/prefixed/Topic/{t}"), "literal ACL under extended")
        data, _ = zk.get("/kafka-acl/Cluster/kafka-cluster")
        check(json.loads(data) == {"version": 1, "acls": [
            {"principal": "User:carol", "permissionType": "Allow", "operation": "IdempotentWrite", "host": "*"}]},
            f"cluster znode {data}")
        new = sorted(set(zk.get_children("/kafka-acl-changes")) - before)
        changes = [zk.get(f"/kafka-acl-changes/{n}")[0].decode() for n in new]
        ctx.observed["/kafka-acl-changes new children"] = list(zip(new, changes))
        check(all(re.fullmatch(r"acl_changes_\d{10}", n) for n in new), f"change node names {new}")
        check(changes == [f"TOPIC:{t}", f"GROUP:{g}", "CLUSTER:kafka-cluster"], f"literal change notifications {changes}")
        new_x = sorted(set(zk.get_children("/kafka-acl-extended-changes")) - before_x)
        changes_x = [zk.get(f"/kafka-acl-extended-changes/{n}")[0].decode() for n in new_x]
        ctx.observed["/kafka-acl-extended-changes new children"] = list(zip(new_x, changes_x))
        check(all(re.fullmatch(r"acl_changes_\d{10}", n) for n in new_x), f"extended change node names {new_x}")
        check([json.loads(x) for x in changes_x] == [
            {"version": 1, "resourceType": "TOPIC", "name": "zn-pre-", "patternType": "PREFIXED"}],
            f"extended change notifications {changes_x}")
        # Removing one ACL rewrites the znode; removing the last deletes it.
        delete_acls(c, [AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, "User:bob", None,
                                         AclOperation.ANY, AclPermissionType.ANY)])
        j = json.loads(zk.get(f"/kafka-acl/Topic/{t}")[0])
        check(j == {"version": 1, "acls": [
            {"principal": "User:alice", "permissionType": "Allow", "operation": "Read", "host": "*"}]},
            f"after deleting bob's: {j}")
        delete_acls(c, [AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                         AclOperation.ANY, AclPermissionType.ANY)])
        left = {p: zk.exists(p) is not None for p in (f"/kafka-acl/Topic/{t}", f"/kafka-acl/Group/{g}",
                                                        "/kafka-acl/Cluster/kafka-cluster",
                                                        "/kafka-acl-extended/prefixed/Topic/zn-pre-")}
        ctx.observed["znode exists after its last ACL is removed"] = left
        check(not any(left.values()), f"znodes left after removing every ACL: {left}")
        check(zk.get_children("/kafka-acl/Topic") == [] and zk.get_children("/kafka-acl/Group") == [],
              "resource type nodes not empty")
        # Removals write notifications too: one per resource changed.
        after = sorted(set(zk.get_children("/kafka-acl-changes")) - before)[len(new):]
        removed = [zk.get(f"/kafka-acl-changes/{n}")[0].decode() for n in after]
        ctx.observed["literal change notifications written by the removals"] = removed
        check(len(removed) == 4 and removed[0] == f"TOPIC:{t}" and
              sorted(removed[1:]) == sorted([f"TOPIC:{t}", f"GROUP:{g}", "CLUSTER:kafka-cluster"]),
              f"literal notifications of the removals {removed}")
        after_x = sorted(set(zk.get_children("/kafka-acl-extended-changes")) - before_x)[len(new_x):]
        removed_x = [json.loads(zk.get(f"/kafka-acl-extended-changes/{n}")[0]) for n in after_x]
        check(removed_x == [{"version": 1, "resourceType": "TOPIC", "name": "zn-pre-", "patternType": "PREFIXED"}],
              f"extended notifications of the removals {removed_x}")
        top = sorted(zk.get_children("/"))
        ctx.observed["ZooKeeper top-level znodes (chroot)"] = top
    finally:
        zk.stop()
        zk.close()
    return {"kazoo": "topic / group / prefixed znodes, change notifications, znodes deleted with their last ACL"}


def config_cmd(cluster, *args):
    """kafka-configs.sh (ConfigCommand) as admin over --bootstrap-server."""
    r = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", cluster.bootstrap(),
                   "--command-config", cluster.client_props["admin"], *args,
                   extra_jvm=[f"-Dlog4j.configuration=file:{cluster.client_log4j}"])
    if r.returncode != 0:
        why = [l.strip() for l in (r.stdout + r.stderr).splitlines() if "Exception" in l or "Error" in l]
        raise Fail(f"kafka-configs.sh {' '.join(args)}: exit {r.returncode}: {' | '.join(why[:4]) or r.stderr[-800:]}")
    return r.stdout


SCRAM_VALUE_RE = re.compile(r"^salt=[A-Za-z0-9+/=]+,stored_key=[A-Za-z0-9+/=]+,server_key=[A-Za-z0-9+/=]+,"
                            r"iterations=(\d+)$")


def case_config_znodes(ctx):
    """/config/users, /config/clients and /config/changes after kafka-configs.sh, field by field
    (SCRAM credentials, quotas of a user, a client, a user's client, the default user; a user
    name that needs sanitizing)."""
    c = ctx.cluster
    user, odd, client = "zn-user", "zn user@example", "zn-client"
    zk = zk_client(c)
    try:
        before = set(zk.get_children("/config/changes")) if zk.exists("/config/changes") else set()
        config_cmd(c, "--alter", "--add-config",
                   "SCRAM-SHA-512=[iterations=8192,password=pw-512],SCRAM-SHA-256=[password=pw-256]",
                   "--entity-type", "users", "--entity-name", user)
        config_cmd(c, "--alter", "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152",
                   "--entity-type", "users", "--entity-name", user)
        config_cmd(c, "--alter", "--add-config", "producer_byte_rate=4096", "--entity-type", "clients",
                   "--entity-name", client)
        config_cmd(c, "--alter", "--add-config", "request_percentage=50", "--entity-type", "users",
                   "--entity-name", user, "--entity-type", "clients", "--entity-name", client)
        config_cmd(c, "--alter", "--add-config", "consumer_byte_rate=8192", "--entity-type", "users",
                   "--entity-default")
        config_cmd(c, "--alter", "--add-config", "producer_byte_rate=100", "--entity-type", "users",
                   "--entity-name", odd)

        def node(path):
            check(zk.exists(path), f"{path} does not exist; /config/users has {zk.get_children('/config/users')}")
            data, _ = zk.get(path)
            ctx.observed[path] = re.sub(r"(salt|stored_key|server_key)=[^,]+", r"\1=..", data.decode())
            j = json.loads(data)
            check(set(j) == {"version", "config"} and j["version"] == 1, f"{path}: {j}")
            return j["config"]

        cfg = node(f"/config/users/{user}")
        check(set(cfg) == {"SCRAM-SHA-512", "SCRAM-SHA-256", "producer_byte_rate", "consumer_byte_rate"},
              f"/config/users/{user} keys {sorted(cfg)}")
        for mech, iterations in (("SCRAM-SHA-512", "8192"), ("SCRAM-SHA-256", "4096")):
            m = SCRAM_VALUE_RE.match(cfg[mech])
            check(m and m.group(1) == iterations, f"{mech} stored as {cfg[mech]!r}")
        ctx.observed["quota values as stored"] = f"{cfg['producer_byte_rate']!r}, {cfg['consumer_byte_rate']!r}"
        check((cfg["producer_byte_rate"], cfg["consumer_byte_rate"]) == ("1048576", "2097152"),
              f"quotas stored as {cfg['producer_byte_rate']!r}, {cfg['consumer_byte_rate']!r}")
        check(node(f"/config/clients/{client}") == {"producer_byte_rate": "4096"},
              f"/config/clients/{client}")
        # Kafka keeps the byte rates as integers and request_percentage as a double.
        check(node(f"/config/users/{user}/clients/{client}") == {"request_percentage": "50.0"},
              f"/config/users/{user}/clients/{client}")
        check(node("/config/users/<default>") == {"consumer_byte_rate": "8192"},
              "/config/users/<default>")
        check(node("/config/users/zn%20user%40example") == {"producer_byte_rate": "100"},
              "sanitized user znode")
        changes = sorted(set(zk.get_children("/config/changes")) - before)
        paths = []
        for name in changes:
            data, _ = zk.get(f"/config/changes/{name}")
            j = json.loads(data)
            check(set(j) == {"version", "entity_path"} and j["version"] == 2, f"{name}: {j}")
            paths.append(j["entity_path"])
        ctx.observed["/config/changes entity paths"] = paths
        check(paths == [f"users/{user}", f"users/{user}", f"clients/{client}", f"users/{user}/clients/{client}",
                        "users/<default>", "users/zn%20user%40example"], f"config changes {paths}")
    finally:
        zk.stop()
        zk.close()
    return {"kazoo": "/config/users (SCRAM, quotas, <default>, a sanitized name), /config/clients, "
                     "/config/users/<u>/clients/<c>, /config/changes"}



def case_admin_api(ctx):
    c = ctx.cluster
    t = "api-t"
    create_topic(c, t)
    notes = {}
    create_acls(c, [topic_acl("User:alice", t, AclOperation.READ),
                    topic_acl("User:bob", "api-", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED)])
    a = admin_client(c, "admin")
    anyf = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                            AclPermissionType.ANY)
    got = sorted((b.restype.name, b.name, b.resource_pattern_type.name, b.principal, b.host, b.operation.name,
                  b.permission_type.name) for b in a.describe_acls(anyf).result(20))
    want = [("TOPIC", "api-", "PREFIXED", "User:bob", "*", "WRITE", "ALLOW"),
            ("TOPIC", t, "LITERAL", "User:alice", "*", "READ", "ALLOW")]
    check(got == want, f"describe_acls ANY: {got}")
    match = AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.MATCH, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    got = sorted((b.name, b.resource_pattern_type.name, b.principal) for b in a.describe_acls(match).result(20))
    check(got == [("api-", "PREFIXED", "User:bob"), (t, "LITERAL", "User:alice")], f"describe_acls MATCH: {got}")
    lit = AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.LITERAL, None, None, AclOperation.ANY,
                           AclPermissionType.ANY)
    got = [(b.name, b.principal) for b in a.describe_acls(lit).result(20)]
    check(got == [(t, "User:alice")], f"describe_acls LITERAL: {got}")
    notes["confluent"] = "describe_acls ANY (2), MATCH on api-t (literal + prefixed api-), LITERAL (1)"
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePattern, ResourcePatternFilter)
    from kafka.admin import ResourceType as KRT
    ka = KafkaAdminClient(**kp_conf(c, "admin"))
    try:
        acls, err = ka.describe_acls(ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                                               permission_type=ACLPermissionType.ANY,
                                               resource_pattern=ResourcePatternFilter(KRT.TOPIC, t,
                                                                                      ACLResourcePatternType.MATCH)))
        got = sorted((x.resource_pattern.resource_name, x.resource_pattern.pattern_type.name, x.principal)
                     for x in acls)
        check(got == [("api-", "PREFIXED", "User:bob"), (t, "LITERAL", "User:alice")],
              f"kafka-python describe_acls MATCH: {got} {err}")
        r = ka.create_acls([ACL("User:carol", "*", ACLOperation.DESCRIBE, ACLPermissionType.ALLOW,
                                ResourcePattern(KRT.GROUP, "api-g", ACLResourcePatternType.LITERAL))])
        check(len(r["succeeded"]) == 1 and not r["failed"], f"kafka-python create_acls: {r}")
        r = ka.delete_acls([ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                                      permission_type=ACLPermissionType.ANY,
                                      resource_pattern=ResourcePatternFilter(KRT.ANY, None,
                                                                             ACLResourcePatternType.ANY))])
        deleted = sorted(m.principal for _f, matches, _e in r for m in matches)
        check(len(r) == 1 and r[0][2].errno == 0 and deleted == ["User:alice", "User:bob", "User:carol"],
              f"kafka-python delete_acls: {r}")
    finally:
        ka.close()
    eventually("no ACLs described after delete_acls ANY", PROPAGATION_BOUND_S,
               lambda: list(a.describe_acls(anyf).result(20)) == [], 0.1)
    notes["kafka-python"] = "describe_acls MATCH, create_acls (group), delete_acls ANY deletes all 3"
    return notes


CASE_FNS = {
    "acl-command": case_acl_command, "topic-read": case_topic_read, "produce": case_produce,
    "prefixed": case_prefixed, "deny": case_deny, "group": case_group, "cluster": case_cluster,
    "transactional": case_transactional, "super-user": case_super_user, "authorized-ops": case_authorized_ops,
    "znodes": case_znodes, "config-znodes": case_config_znodes, "admin-api": case_admin_api,
}
COLUMNS = ["confluent", "kafka-python", "kcat", "java", "raw-metadata", "kazoo"]


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--broker", help="gregor binary")
    g.add_argument("--kafka", action="store_true", help="Apache Kafka 3.9.2 (ZooKeeper mode)")
    ap.add_argument("--only", default="", help="cases, comma-separated: " + ",".join(CASES))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--show-config", action="store_true", help="print server-1.properties")
    args = ap.parse_args()
    only = [n for n in args.only.split(",") if n]
    bad = [n for n in only if n not in CASE_FNS]
    if bad:
        ap.error(f"unknown case(s) {bad}; cases: {', '.join(CASES)}")
    fetch_kafka()   # kafka-acls.sh and the console tools come from the 3.9 jars either way

    root = tempfile.mkdtemp(prefix="gregor-acl-")
    cluster = None
    results = {}
    failed = 0

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    t_start = time.time()
    ctx = None
    try:
        cluster = Cluster(args, root)
        up = cluster.wait_ready()
        print(f"{cluster.kind} brokers {', '.join(f'{n.id} on {n.address()}' for n in cluster.nodes)} "
              f"(ZooKeeper {cluster.zk}) ready after {up:.1f}s ({root})", flush=True)
        if args.show_config:
            print(open(cluster.node(1).props).read(), flush=True)
        ctx = Ctx(cluster, args)
        for name in CASES:
            if only and name not in only:
                continue
            t0 = time.time()
            try:
                notes = CASE_FNS[name](ctx)
                for col, note in notes.items():
                    results[(name, col)] = ("pass", note)
            except NotApplicable as e:
                results[(name, "-")] = ("n/a", str(e))
            except Exception as e:  # noqa: BLE001 - recorded as FAIL
                failed += 1
                results[(name, "-")] = ("FAIL", f"{type(e).__name__}: {e}"[:2000])
                traceback.print_exc()
            try:
                delete_acls(cluster, [ANY_ACL])
            except Exception as e:  # noqa: BLE001 - recorded as FAIL (once per case)
                if (name, "-") not in results:
                    failed += 1
                results[(name, "cleanup")] = ("FAIL", f"deleting every ACL after the case: {e}")
            for (n, col), (st, note) in results.items():
                if n == name:
                    print(f"{st:4} {name:15} {col:13} {note}", flush=True)
            print(f"     {name} took {time.time() - t0:.1f}s", flush=True)
    except BaseException as e:  # noqa: BLE001 - setup failures, Ctrl-C
        failed += 1
        print(f"FAIL setup/run: {type(e).__name__}: {e}", flush=True)
        traceback.print_exc()
    finally:
        if failed and cluster:
            print(f"--- broker log tails ---\n{cluster.tail()}", flush=True)
        _admins.clear()
        if cluster:
            cluster.close()
        print_matrix(results)
        if ctx and ctx.observed:
            print("\nobserved:")
            for k, v in ctx.observed.items():
                print(f"  {k}: {v}")
        print(f"{sum(1 for s, _ in results.values() if s == 'pass')} passed, {failed} failed, "
              f"{sum(1 for s, _ in results.values() if s == 'n/a')} n/a in {time.time() - t_start:.0f}s")
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if failed or not results else 0)


def print_matrix(results):
    names = [n for n in CASES if any(k[0] == n for k in results)]
    if not names:
        return
    cols = COLUMNS + (["-"] if any(k[1] == "-" for k in results) else [])
    print("\n" + "case".ljust(16) + "".join(c.ljust(14) for c in cols))
    for n in names:
        row = []
        for col in cols:
            st = results.get((n, col), (None,))[0]
            if st is None:
                st = "." if (n, "-") in results else "n/a"
            row.append(st.ljust(14))
        print(n.ljust(16) + "".join(row))
    print("  n/a: the case does not use that client; -: the case as a whole (it stopped at its first "
          "failure: its clients' cells are '.')")
    for (n, col), (st, note) in results.items():
        if st != "pass":
            print(f"  {st} {n} x {col}: {note}")


if __name__ == "__main__":
    main()
