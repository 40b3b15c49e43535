"""Consumer-group scenarios: every row client runs its own group members as separate
processes (client.group_member -> compat/group_member.py) against gregor's group coordinator.
Topics are created and messages produced with confluent-kafka (a fast producer; what is under test
here is the consuming side); every record a member reports is checked against what was produced
(partition, offset, key and value bytes)."""
import time

from .clients.confluent import ConfluentClient
from .data import make_messages
from .scenarios import RUN, NotApplicable, require, wait_partitions

SESSION_MS = 6000     # the broker's group.min.session.timeout.ms
HEARTBEAT_MS = 1000   # so a member learns of a rebalance within ~1 s (default 3 s)


def _producer(ctx):
    if "group_producer" not in ctx:
        ctx["group_producer"] = ConfluentClient(ctx["broker"].bootstrap)
    return ctx["group_producer"]


def _topic(ctx, scenario, client, partitions):
    name = f"compat-{scenario}-{client.name.replace('-', '')}-{RUN}"
    p = _producer(ctx)
    p.create_topic(name, partitions)
    md = wait_partitions(p, name, partitions)
    assert sorted(md) == list(range(partitions)), f"topic {name}: metadata {md}"
    return name


def _produce(ctx, topic, n, partitions, tag, base=0):
    """n messages, i % partitions; returns {(partition, offset): (key, value)}."""
    msgs = make_messages(n, partitions, None, "full", tag=f"{tag}{base}", big=False)
    results = _producer(ctx).produce(topic, msgs)
    return {(p, o): (m.key, m.value) for m, (p, o) in zip(msgs, results)}


def _group(scenario, client, suffix=""):
    return f"g-{scenario}-{client.name.replace('-', '')}{suffix}-{RUN}"


def _stable(members, partitions):
    """The members' current assignments if together they hold every partition exactly once and
    each holds at least one and at most one more than any other (the group has settled: with
    KIP-848 or cooperative rebalancing an unbalanced cover is an intermediate step), else None."""
    asg = [m.assignment() for m in members]
    if any(not a for a in asg):
        return None
    sizes = [len(a) for a in asg]
    if max(sizes) - min(sizes) > 1:
        return None
    flat = sorted(p for a in asg for p in a)
    return asg if flat == list(range(partitions)) else None


def _wait_stable(members, partitions, timeout=60):
    return members[0].wait_for(lambda: _stable(members, partitions), timeout,
                               f"a settled assignment of {partitions} partitions over {len(members)} members "
                               f"(now {[m.assignment() for m in members]})")


def _check_errors(members):
    errs = [f"{m.name}: {e}" for m in members for e in m.errors()]
    assert not errs, "member errors: " + "; ".join(errs[:5])


def _content_problems(recs, expected, who):
    problems = []
    for r in recs:
        want = expected.get((r["p"], r["o"]))
        if want is None:
            problems.append(f"{who}: record p{r['p']}@{r['o']} was never produced")
        elif (r["k"], r["v"]) != want:
            problems.append(f"{who}: p{r['p']}@{r['o']} key/value {r['k'][:30]!r}/{(r['v'] or b'')[:30]!r} "
                            f"!= produced {want[0][:30]!r}/{(want[1] or b'')[:30]!r}")
        if len(problems) >= 5:
            break
    return problems


def _wait_all(members, expected, timeout=90):
    """Until the members together have seen every produced (partition, offset)."""
    want = set(expected)

    def done():
        seen = {(r["p"], r["o"]) for m in members for r in m.records()}
        return want <= seen
    try:
        members[0].wait_for(done, timeout, f"all {len(want)} records")
    except AssertionError:
        seen = {(r["p"], r["o"]) for m in members for r in m.records()}
        missing = sorted(want - seen)
        raise AssertionError(f"{len(missing)} of {len(want)} records never received, first {missing[:5]}; "
                             f"assignments {[m.assignment() for m in members]}; errors {[m.errors()[:2] for m in members]}")


def _exactly_once(members, expected, partitions_of=None):
    """Every produced record seen exactly once over all members, with the produced bytes,
    and (when given) each member only from its own partitions."""
    problems, count = [], {}
    for m in members:
        recs = m.records()
        problems += _content_problems(recs, expected, m.name)
        for r in recs:
            count[(r["p"], r["o"])] = count.get((r["p"], r["o"]), 0) + 1
            if partitions_of and r["p"] not in partitions_of[m.name]:
                problems.append(f"{m.name} got p{r['p']}@{r['o']} outside its assignment {partitions_of[m.name]}")
                partitions_of = None  # once is enough
    dups = sorted(k for k, c in count.items() if c > 1)
    missing = sorted(set(expected) - set(count))
    if dups:
        problems.append(f"{len(dups)} records delivered more than once, first {dups[:5]}")
    if missing:
        problems.append(f"{len(missing)} records never delivered, first {missing[:5]}")
    return problems


def _start(client, n, group, topic, partitions, **opts):
    return [client.group_member(f"{client.name}#{i}", group, topic, partitions, **opts) for i in range(n)]


def _finish(members):
    for m in members:
        m.cleanup()


# ---------------------------------------------------------------------------- scenarios


def s_groups_queue(ctx, client):
    """3 members, 6 partitions, 30,000 messages: disjoint assignment, every record exactly once."""
    P, N = 6, 30_000
    topic = _topic(ctx, "gqueue", client, P)
    members = _start(client, 3, _group("queue", client), topic, P)
    try:
        t0 = time.monotonic()
        asg = _wait_stable(members, P)
        t_join = time.monotonic() - t0
        before = [len(m.rebalances()) for m in members]
        expected = _produce(ctx, topic, N, P, "queue")
        _wait_all(members, expected)
        time.sleep(0.5)  # late duplicates, if any, would show up now
        _check_errors(members)
        after = [len(m.rebalances()) for m in members]
        assert after == before, (f"rebalance callbacks while consuming: {before} -> {after}: "
                                 f"{[[e for _, e in m.rebalances()] for m in members]}")
        problems = _exactly_once(members, expected, {m.name: a for m, a in zip(members, asg)})
        assert not problems, "\n    ".join(problems)
        for m in members:
            m.close()
        counts = [len(m.records()) for m in members]
        return f"assignments {[list(a) for a in asg]} after {t_join:.1f}s, {N} records exactly once ({counts})"
    finally:
        _finish(members)


def s_groups_pubsub(ctx, client):
    """Two groups on one topic (group A with 2 members, group B with 1): each sees every record once."""
    P, N = 3, 5_000
    topic = _topic(ctx, "gpubsub", client, P)
    a = _start(client, 2, _group("pubsub", client, "A"), topic, P)
    b = [client.group_member(f"{client.name}#B", _group("pubsub", client, "B"), topic, P)]
    try:
        _wait_stable(a, P)
        _wait_stable(b, P)
        expected = _produce(ctx, topic, N, P, "pubsub")
        _wait_all(a, expected)
        _wait_all(b, expected)
        time.sleep(0.5)
        _check_errors(a + b)
        for g, ms in (("A", a), ("B", b)):
            problems = _exactly_once(ms, expected)
            assert not problems, f"group {g}: " + "\n    ".join(problems)
        for m in a + b:
            m.close()
        return f"group A (2 members) and group B (1 member) each got all {N} records exactly once"
    finally:
        _finish(a + b)


def _offsets_via_confluent(bootstrap, group, topic, partitions):
    """OffsetFetch for the group through confluent-kafka (no subscription, so no join)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        res = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=20)
        return {r.partition: (None if r.offset < 0 else r.offset) for r in res}
    finally:
        c.close()


def _commit_resume(ctx, client, topic, expected, P, mode):
    half = len(expected) // 2
    group = _group("commit", client, mode)
    m1 = client.group_member(f"{client.name}#1-{mode}", group, topic, P,
                             auto_commit=1 if mode == "auto" else 0, max_records=half)
    m2 = None
    try:
        m1.wait_for(lambda: len(m1.records()) >= half, 60, f"the first {half} records")
        recs1 = m1.records()
        if mode == "manual":
            assert len(recs1) == half, f"{client.name}: processed {len(recs1)} records, asked for {half}"
        last1 = {}
        for r in recs1:
            last1[r["p"]] = max(last1.get(r["p"], -1), r["o"] + 1)
        want = {p: last1.get(p) for p in range(P)}
        if mode == "manual":
            ok = m1.request("commit", "commit_ok")
            assert ok["ev"] == "commit_ok", f"commit: {ok}"
            got = m1.request("committed", "committed")
            assert got["ev"] == "committed", f"committed(): {got}"
            own = {int(k): v for k, v in got["offsets"].items()}
            assert own == want, f"committed() right after commit = {own}, expected {want}"
        m1.close()  # auto mode: the client commits the consumed position on close (kcat: -c exit)
        fetched = _offsets_via_confluent(ctx["broker"].bootstrap, group, topic, P)
        if mode == "auto":
            # Auto-commit commits the position of every assigned partition: 0 for one not read from.
            want = {p: (0 if want[p] is None and fetched.get(p) == 0 else want[p]) for p in range(P)}
        assert fetched == want, f"OffsetFetch after close = {fetched}, expected {want} (1 + last record read per partition)"
        # The resuming member never commits (manual mode), so its committed() shows the first one's.
        resume_mode = 0 if _capable(client, "manual_commit") else 1
        m2 = client.group_member(f"{client.name}#2-{mode}", group, topic, P, auto_commit=resume_mode)
        _wait_all([m1, m2], expected, timeout=60)
        time.sleep(0.3)
        _check_errors([m1, m2])
        recs2 = m2.records()
        first2 = {}
        for r in recs2:
            first2.setdefault(r["p"], r["o"])
        for p in range(P):
            start = want[p] or 0
            assert first2.get(p, start) == start, f"p{p}: resumed at {first2.get(p)}, committed {want[p]}"
        problems = _exactly_once([m1, m2], expected)
        assert not problems, "\n    ".join(problems)
        note = ""
        if _capable(client, "manual_commit"):
            got = m2.request("committed", "committed")
            own = {int(k): v for k, v in got.get("offsets", {}).items()}
            assert own == want, f"committed() seen by the second member = {own}, expected {want}"
            note = " and the client's committed()"
        m2.close()
        return f"{mode}: {len(recs1)} then {len(recs2)} records, resumed at {want} (checked by OffsetFetch{note})"
    finally:
        _finish([m for m in (m1, m2) if m])


def s_groups_commit_resume(ctx, client):
    P, N = 3, 3_000
    topic = _topic(ctx, "gcommit", client, P)
    expected = _produce(ctx, topic, N, P, "commit")
    notes = []
    modes = ("manual", "auto") if _capable(client, "manual_commit") else ("auto",)
    for mode in modes:
        notes.append(_commit_resume(ctx, client, topic, expected, P, mode))
    if not _capable(client, "manual_commit"):
        notes.append(f"manual n/a ({client.name} has no commit command)")
    return "; ".join(notes)


def _holds_all_at(events, partitions, after):
    """Index and time of the first callback after `after` that leaves the member holding every
    partition (callbacks applied incrementally: eager and KIP-848 alike), or None."""
    held = set()
    for i, (t, e) in enumerate(events):
        if e["ev"] == "assigned":
            held |= set(e["parts"])
        elif e["ev"] == "revoked":
            held -= set(e["parts"])
        else:
            continue
        if t > after and e["ev"] == "assigned" and held == set(range(partitions)):
            return i, t
    return None


def _assigned_all_at(member, partitions, after):
    """Time at which `member` came to hold all partitions after `after`, or None."""
    found = _holds_all_at(member.rebalances(), partitions, after)
    return found[1] if found else None


def s_groups_kill9(ctx, client):
    """Two members; kill -9 one: its partitions move to the survivor after the session timeout,
    nothing is lost. Then a third member joins and closes cleanly: the move back is immediate."""
    P = 6
    topic = _topic(ctx, "gkill", client, P)
    group = _group("kill9", client)
    opts = dict(session_ms=SESSION_MS, heartbeat_ms=HEARTBEAT_MS)
    a, b = _start(client, 2, group, topic, P, **opts)
    c = None
    try:
        asg = _wait_stable([a, b], P)
        b_parts = set(asg[1])
        expected = _produce(ctx, topic, 3000, P, "kill")
        _wait_all([a, b], expected)
        # Let the auto-commit (every 5 s) cover the first half of the killed member's partitions,
        # so the survivor must resume exactly there (OffsetFetch after the takeover).
        ends = {p: 1 + max(o for (q, o) in expected if q == p) for p in range(P)}
        bootstrap = ctx["broker"].bootstrap
        deadline = time.monotonic() + 15
        while True:
            committed_at_kill = _offsets_via_confluent(bootstrap, group, topic, P)
            if all(committed_at_kill[p] == ends[p] for p in b_parts):
                break
            assert time.monotonic() < deadline, (f"auto-commit never committed the consumed offsets: "
                                                 f"{committed_at_kill}, consumed up to {ends}")
            time.sleep(0.3)
        t_kill = time.monotonic()
        b.kill9()
        expected.update(_produce(ctx, topic, 3000, P, "kill", base=1))
        t_move = a.wait_for(lambda: _assigned_all_at(a, P, t_kill), 30,
                            "the survivor to be assigned every partition") - t_kill
        _wait_all([a, b], expected, timeout=60)
        time.sleep(0.5)
        _check_errors([a])
        problems = _content_problems(a.records() + b.records(), expected, "a/b")
        # The survivor re-reads every partition from its committed offset after the rebalance
        # (eager protocol): its own and the killed member's. Duplicates may only come from
        # that uncommitted window: [committed offset at the kill, last offset read before).
        ev_a = a.snapshot()
        i_take = _holds_all_at(ev_a, P, t_kill)[0]
        before = {}
        for r in b.records() + [e for _, e in ev_a[:i_take] if e["ev"] == "rec"]:
            before.setdefault(r["p"], set()).add(r["o"])
        after = {}
        for _, e in ev_a[i_take:]:
            if e["ev"] == "rec":
                after.setdefault(e["p"], []).append(e["o"])
        dups, windows = 0, {}
        for p in range(P):
            offs = after.get(p, [])
            if not offs:
                continue
            s_p = offs[0]
            if offs != list(range(s_p, s_p + len(offs))):
                problems.append(f"p{p}: survivor's offsets after the rebalance not contiguous from {s_p}")
            if committed_at_kill.get(p) is not None and s_p < committed_at_kill[p]:
                problems.append(f"p{p}: survivor restarted at {s_p}, below the committed offset {committed_at_kill[p]}")
            if p in b_parts and s_p != committed_at_kill[p]:
                problems.append(f"p{p} (killed member's): survivor resumed at {s_p}, the committed offset is "
                                f"{committed_at_kill[p]}")
            d = sum(1 for o in offs if o in before.get(p, ()))
            dups += d
            if d:
                windows[p] = (s_p, s_p + d)
        count = {}
        for r in a.records() + b.records():
            count[(r["p"], r["o"])] = count.get((r["p"], r["o"]), 0) + 1
        bad = [k for k, n in count.items() if n > 2]
        if bad:
            problems.append(f"records delivered three times or more: {sorted(bad)[:5]}")
        assert not problems, "\n    ".join(problems[:8])
        assert SESSION_MS / 1000 - 1.5 <= t_move <= SESSION_MS / 1000 + 5, (
            f"partitions moved {t_move:.1f}s after kill -9 (session timeout {SESSION_MS} ms)")

        # A clean close must move the partitions at once (LeaveGroup), not after the session timeout.
        c = client.group_member(f"{client.name}#C", group, topic, P, **opts)
        _wait_stable([a, c], P)
        t_close = time.monotonic()
        c.close()
        t_leave = a.wait_for(lambda: _assigned_all_at(a, P, t_close), 30,
                             "the survivor to get the closed member's partitions") - t_close
        assert t_leave < SESSION_MS / 1000 / 2, (f"after a clean close the partitions moved only after "
                                                 f"{t_leave:.1f}s (session timeout {SESSION_MS} ms)")
        _check_errors([a, c])
        a.close()
        return (f"kill -9: partitions {sorted(b_parts)} moved after {t_move:.1f}s, all 6000 received, "
                f"resumed at the committed offsets {[committed_at_kill[p] for p in sorted(b_parts)]}, "
                f"{dups} re-read (uncommitted window) {windows}; clean close: moved after {t_leave:.1f}s")
    finally:
        _finish([m for m in (a, b, c) if m])


def _after_first_assignment(member):
    """Callbacks after the member's first assignment (kafka-python reports an empty revoke before
    its first join, which is no rebalance)."""
    evs = member.rebalances()
    i = next((i for i, (_, e) in enumerate(evs) if e["ev"] == "assigned"), len(evs))
    return evs[i + 1:]


def s_groups_static(ctx, client):
    """Two static members; restart each in turn within the session timeout (so the group leader is
    restarted once, whichever it is): no rebalance for the other, the same partitions for the
    restarted one, and none after the old incarnations' sessions would have expired."""
    if not _capable(client, "static_membership"):
        raise NotApplicable(f"{client.name} has no static membership (group.instance.id)")
    P = 4
    topic = _topic(ctx, "gstatic", client, P)
    group = _group("static", client)
    opts = dict(session_ms=SESSION_MS, heartbeat_ms=HEARTBEAT_MS)

    def start(inst, gen=""):
        return client.group_member(f"{client.name}#{inst}{gen}", group, topic, P, instance_id=inst, **opts)

    live = {"s1": start("s1"), "s2": start("s2")}
    everyone = list(live.values())
    try:
        asg = dict(zip(("s1", "s2"), _wait_stable([live["s1"], live["s2"]], P)))
        expected = _produce(ctx, topic, 1000, P, "static")
        _wait_all(everyone, expected)
        times, extra = [], []
        for inst, other in (("s2", "s1"), ("s1", "s2")):
            n_other = len(live[other].rebalances())
            t_close = time.monotonic()
            live[inst].close()
            new = start(inst, "'")
            everyone.append(new)
            new.wait_for(lambda: new.assignment(), 30, f"the restarted static member {inst}'s assignment")
            times.append(time.monotonic() - t_close)
            assert times[-1] < SESSION_MS / 1000, f"restart of {inst} took {times[-1]:.1f}s, not within the session timeout"
            assert new.assignment() == asg[inst], f"restarted {inst} got {new.assignment()}, had {asg[inst]}"
            time.sleep(0.5)  # a rebalance would reach the other member within a heartbeat (1 s)
            if live[other] in everyone[:2]:  # an original member; restarted ones are checked below
                extra += [(live[other].name, e) for _, e in live[other].rebalances()[n_other:]]
            live[inst] = new
        expected.update(_produce(ctx, topic, 1000, P, "static", base=1))
        _wait_all(everyone, expected)
        # Past the old incarnations' session timeouts: still no rebalance.
        time.sleep(max(0.0, t_close + SESSION_MS / 1000 + 2.0 - time.monotonic()))
        _check_errors(everyone)
        for m in live.values():
            extra += [(m.name, e) for _, e in _after_first_assignment(m)]
        assert not extra, f"rebalance callbacks after a static restart: {extra}"
        problems = _content_problems([r for m in everyone for r in m.records()], expected, "static")
        assert not problems, "\n    ".join(problems)
        for m in live.values():
            m.close()
        return (f"assignments {[list(a) for a in asg.values()]}; s2 then s1 restarted in "
                f"{times[0]:.1f}s / {times[1]:.1f}s, each got its partitions back, no rebalance callbacks "
                f"until {SESSION_MS / 1000 + 2:.0f}s after the last restart")
    finally:
        _finish(everyone)


class Kip848Client:
    """A client whose members use KIP-848 (`group.protocol=consumer`): the broker computes the
    assignment, and the session timeout and heartbeat interval are broker settings
    (`group.consumer.session.timeout.ms` / `...heartbeat.interval.ms`, set by run_compat.py to
    the SESSION_MS / HEARTBEAT_MS used here), so members do not set them."""

    def __init__(self, client):
        self.inner = client
        self.name = f"{client.name}-kip848"

    def __getattr__(self, attr):  # capabilities (manual_commit, static_membership, ...)
        return getattr(self.inner, attr)

    def group_member(self, name, group, topic, partitions, **opts):
        opts.pop("session_ms", None)
        opts.pop("heartbeat_ms", None)
        return self.inner.group_member(name, group, topic, partitions, protocol="consumer", **opts)


def _capable(client, capability):
    """The adapter's group capability (class attributes, compat/clients/__init__.py):
    `cooperative`, `kip848`, `static_membership` or `manual_commit`; absent means no."""
    return getattr(client, capability, False)


class CooperativeClient:
    """A client whose members use the classic protocol with the cooperative-sticky assignor:
    the clients revoke only the partitions that move and rejoin at once (incremental
    rebalancing driven by the clients; the broker runs the classic protocol unchanged)."""

    def __init__(self, client):
        self.inner = client
        self.name = f"{client.name}-coop"

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def group_member(self, name, group, topic, partitions, **opts):
        return self.inner.group_member(name, group, topic, partitions, assignor="cooperative-sticky", **opts)


def cooperative(scenario):
    def run(ctx, client):
        if not _capable(client, "cooperative"):
            raise NotApplicable(f"{client.name}: no cooperative-sticky assignor in this client")
        return scenario(ctx, CooperativeClient(client))
    return run


def kip848(scenario):
    def run(ctx, client):
        if not _capable(client, "kip848"):
            raise NotApplicable(f"{client.name} has no KIP-848 consumer (group.protocol=consumer)")
        return scenario(ctx, Kip848Client(client))
    return run


def _groups(scenario):
    """n/a for a client without consumer groups (its `unsupported` map says why)."""
    def run(ctx, client):
        require(client, "groups")
        return scenario(ctx, client)
    return run


GROUP_SCENARIOS = [(name, _groups(fn)) for name, fn in [
    ("groups-queue", s_groups_queue),
    ("groups-pubsub", s_groups_pubsub),
    ("groups-commit-resume", s_groups_commit_resume),
    ("groups-kill9", s_groups_kill9),
    ("groups-static", s_groups_static),
    # Client-driven incremental (cooperative) rebalancing on the classic protocol.
    ("coop-queue", cooperative(s_groups_queue)),
    ("coop-kill9", cooperative(s_groups_kill9)),
    # The same with the KIP-848 protocol, for the clients that have it.
    ("kip848-queue", kip848(s_groups_queue)),
    ("kip848-pubsub", kip848(s_groups_pubsub)),
    ("kip848-commit-resume", kip848(s_groups_commit_resume)),
    ("kip848-kill9", kip848(s_groups_kill9)),
    ("kip848-static", kip848(s_groups_static)),
]]
