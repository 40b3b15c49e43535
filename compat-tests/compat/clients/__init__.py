"""Per-client adapters with one interface, so each scenario is written once:

    create_topic(topic, partitions)            -> "created" | "auto" (kcat: auto-creation)
    metadata(topic)                            -> {partition: leader}
    produce(topic, msgs, compression, idempotent) -> [(partition, offset)] per message, or None
                                                  when the client cannot report offsets (kcat)
    consume(topic, partition, start, count)    -> [Rec]
    offsets(topic, partition, timestamps)      -> (earliest, latest, [offset for each ts, None if none])
    group_member(name, group, topic, partitions, auto_commit=, max_records=, session_ms=,
                 heartbeat_ms=, instance_id=)  -> a running subscribed member in its own process
                                                  (compat/group_member.py Member)

Capabilities: `timestamps` (per-message CreateTime on produce), `header_mode` ("full": duplicate
keys + null values, "nonull": duplicate keys only, "fixed": one header set per run, "unique":
distinct keys in key order, no null values, also the only headers such a client reads back),
`produce_offsets`; for the group scenarios `cooperative` (group members with the
cooperative-sticky assignor: the coop-* scenarios), `kip848` (group members with
`group.protocol=consumer`: the kip848-* scenarios), `static_membership` (group.instance.id:
groups-static) and `manual_commit` (a member commits on command and reads committed(): the manual
half of groups-commit-resume); a client without one of these is `n/a` in those columns. Optionally
`unsupported` ({"idempotent" | "groups": reason}: those scenarios are n/a with the reason).
Every call is bounded by a timeout; failures raise ClientError with the client's own words."""

CALL_TIMEOUT = 120  # seconds, upper bound for any single client call


class ClientError(Exception):
    pass

