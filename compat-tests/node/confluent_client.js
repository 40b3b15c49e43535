// @confluentinc/kafka-javascript side of compat_client.js (lib `confluent-js`).
//
// Uses the library's node-rdkafka-style API (Producer, KafkaConsumer, AdminClient) rather than
// its KafkaJS-compatible one: the delivery reports of the former carry each message's own
// offset (the KafkaJS-style send() answers one base offset per partition), and its consumer
// has assign() and the rebalance callback with incremental assign/unassign.
// - Headers: an array of one-key objects, so duplicate keys keep their order; a null header
//   value is rejected by the binding ("Header value must be a string or buffer", thrown after
//   the message was queued: it is sent without that header), and a null header value read back
//   comes out as an empty buffer.
// - Empty (not null) keys, values and header values: the binding passes a Buffer's data pointer
//   to librdkafka, which writes a NULL pointer as null; Node 20 gives a zero-length Buffer a
//   NULL data pointer (and so does the binding's own substitute for one, confluent-kafka-javascript
//   PR #53), so Buffer.alloc(0) would be produced as null. A zero-length view into a non-empty
//   buffer has a real pointer: produce() passes that (EMPTY) for every empty field.
// - Groups: classic protocol with librdkafka's default assignors (range,roundrobin), eager
//   unless assignor=cooperative-sticky; static membership (group.instance.id); KIP-848 with
//   protocol=consumer. Rebalance callbacks: the 'rebalance' event of rebalance_cb: true, which
//   then does the (incremental when COOPERATIVE) assign/unassign itself.
// COMPAT_RDKAFKA_DEBUG=cgrp,... turns on librdkafka's debug log (stderr).
'use strict';

const { Producer, KafkaConsumer, AdminClient } = require('@confluentinc/kafka-javascript');

const ERR_QUEUE_FULL = -184;
const ERR_ASSIGN = -175;
const ERR_REVOKE = -174;
const ERR_PARTITION_EOF = -191;
const ERR_TIMED_OUT = -185;

function common(bootstrap) {
  const conf = { 'bootstrap.servers': bootstrap, 'socket.timeout.ms': 15000 };
  if (process.env.COMPAT_RDKAFKA_DEBUG) {
    conf.debug = process.env.COMPAT_RDKAFKA_DEBUG;
    conf.event_cb = true;
  }
  return conf;
}

function logTo(client) {
  client.on('event.log', l => process.stderr.write(`${new Date().toISOString()} ${l.severity} ${l.fac} ${l.message}\n`));
  client.on('event.error', e => process.stderr.write(`${new Date().toISOString()} error: ${e}\n`));
  return client;
}

function call(fn) {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

const EMPTY = Buffer.alloc(1).subarray(0, 0); // zero-length, but a non-NULL data pointer
const nonNull = b => (b !== null && b.length === 0 ? EMPTY : b);

async function withAdmin(bootstrap, fn) {
  const admin = AdminClient.create(common(bootstrap));
  try {
    return await fn(admin);
  } finally {
    admin.disconnect();
  }
}

async function create(bootstrap, topic, partitions) {
  await withAdmin(bootstrap, admin => call(cb => admin.createTopic(
    { topic, num_partitions: partitions, replication_factor: 1 }, 20000, cb)));
}

async function metadata(bootstrap, topic) {
  const [d] = await withAdmin(bootstrap, admin => call(cb => admin.describeTopics([topic], { timeout: 20000 }, cb)));
  if (!d || d.error) throw new Error(`describeTopics ${topic}: ${d ? JSON.stringify(d.error) : 'no answer'}`);
  return d.partitions.map(p => [p.partition, p.leader === null || p.leader === undefined ? -1
    : typeof p.leader === 'object' ? p.leader.id : p.leader]).sort((a, b) => a[0] - b[0]);
}

async function produce(bootstrap, topic, msgs, compression, idempotent) {
  const p = logTo(new Producer({
    ...common(bootstrap),
    acks: 'all',
    'enable.idempotence': idempotent,
    'compression.type': compression || 'none',
    'linger.ms': 5,
    'message.timeout.ms': 60000,
    'queue.buffering.max.messages': 200000,
    dr_cb: true,
  }));
  const results = new Array(msgs.length);
  let pending = 0;
  p.on('delivery-report', (err, report) => {
    const i = report.opaque;
    if (results[i] && results[i].error !== undefined) {
      // produce() threw, yet the binding had queued the message (it throws a bad header's
      // error after the fact and sends the message without that header): the error stands.
      results[i].error += ` (yet delivered at ${report.partition}/${report.offset})`;
    } else {
      results[i] = err ? { error: String(err) } : { partition: report.partition, offset: report.offset };
      pending--;
    }
  });
  await call(cb => p.connect({ timeout: 20000 }, cb));
  p.setPollInterval(10);
  try {
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      const headers = m.headers.map(([k, v]) => ({ [k]: nonNull(v) }));
      for (;;) {
        try {
          p.produce(topic, m.partition, nonNull(m.value), nonNull(m.key), m.timestamp, i, headers);
          pending++;
          break;
        } catch (e) {
          if (e.code !== ERR_QUEUE_FULL) {
            results[i] = { error: String(e.message || e) };
            break;
          }
          await sleep(10);
        }
      }
    }
    await call(cb => p.flush(120000, cb));
    const deadline = Date.now() + 10000; // the last delivery reports come with the next poll
    while (pending > 0 && Date.now() < deadline) await sleep(10);
  } finally {
    await call(cb => p.disconnect(5000, cb));
  }
  return results;
}

/** auto.offset.reset is a topic property: it must go in the topic configuration, which
 * replaces any topic defaults set in the global one. */
function consumer(conf, reset) {
  return logTo(new KafkaConsumer(conf, reset ? { 'auto.offset.reset': reset } : {}));
}

async function consume(bootstrap, topic, partition, start, count, timeoutMs, onRecord) {
  const c = consumer({
    ...common(bootstrap),
    'group.id': 'compat-unused', // required; never used to subscribe
    'enable.auto.commit': false,
    'enable.auto.offset.store': false,
  }, 'error');
  await call(cb => c.connect({ timeout: 20000 }, cb));
  try {
    c.assign([{ topic, partition, offset: start }]);
    c.setDefaultConsumeTimeout(500);
    let got = 0;
    const deadline = Date.now() + timeoutMs;
    while (got < count && Date.now() < deadline) {
      for (const m of await call(cb => c.consume(1000, cb))) {
        if (got >= count) break;
        onRecord({
          partition: m.partition, offset: m.offset, timestamp: m.timestamp, tstype: null,
          key: m.key === undefined ? null : m.key, value: m.value,
          headers: (m.headers || []).map(h => { const k = Object.keys(h)[0]; return [k, h[k]]; }),
        });
        got++;
      }
    }
  } finally {
    await call(cb => c.disconnect(cb));
  }
}

async function offsets(bootstrap, topic, partition, timestamps) {
  const c = consumer({ ...common(bootstrap), 'group.id': 'compat-unused', 'enable.auto.commit': false });
  await call(cb => c.connect({ timeout: 20000 }, cb));
  try {
    const w = await call(cb => c.queryWatermarkOffsets(topic, partition, 20000, cb));
    const byTs = [];
    for (const ts of timestamps) {
      const [r] = await call(cb => c.offsetsForTimes([{ topic, partition, offset: ts }], 20000, cb));
      byTs.push(r.offset < 0 ? null : r.offset);
    }
    return [w.lowOffset, w.highOffset, byTs];
  } finally {
    await call(cb => c.disconnect(cb));
  }
}

async function group(bootstrap, g, io) {
  const conf = {
    ...common(bootstrap),
    'group.id': g.group,
    'enable.auto.commit': g.auto,
    rebalance_cb: true,
  };
  if (g.sessionMs) conf['session.timeout.ms'] = g.sessionMs;
  if (g.heartbeatMs) conf['heartbeat.interval.ms'] = g.heartbeatMs;
  if (g.instanceId) conf['group.instance.id'] = g.instanceId;
  if (g.protocol) conf['group.protocol'] = g.protocol; // KIP-848: "consumer"
  if (g.assignor) conf['partition.assignment.strategy'] = g.assignor; // e.g. cooperative-sticky
  const c = consumer(conf, 'earliest');
  c.on('rebalance', (err, assignment) => {
    const parts = assignment.filter(tp => tp.topic === g.topic).map(tp => tp.partition).sort((a, b) => a - b);
    if (err && err.code === ERR_ASSIGN) io.emit({ ev: 'assigned', parts });
    else if (err && err.code === ERR_REVOKE) {
      io.emit(c.assignmentLost() ? { ev: 'revoked', lost: true, parts } : { ev: 'revoked', parts });
    } else io.error(`rebalance: ${err}`);
  });
  c.on('rebalance.error', e => io.error(`rebalance assign/unassign: ${e}`));
  await call(cb => c.connect({ timeout: 20000 }, cb));
  c.subscribe([g.topic]);
  c.setDefaultConsumeTimeout(200);

  // Consume calls and commands take turns, as in the Python and Java members.
  let chain = Promise.resolve();
  const locked = fn => {
    const r = chain.then(fn);
    chain = r.catch(() => {});
    return r;
  };
  const next = new Map();
  let processed = 0;
  let closing = false;

  io.start({
    commit: () => locked(async () => {
      const offs = [...next.entries()].map(([partition, offset]) => ({ topic: g.topic, partition, offset }));
      if (offs.length) c.commitSync(offs);
      return Object.fromEntries([...next.entries()].sort((a, b) => a[0] - b[0]));
    }),
    committed: () => locked(async () => {
      const tps = [];
      for (let p = 0; p < g.partitions; p++) tps.push({ topic: g.topic, partition: p });
      const res = await call(cb => c.committed(tps, 20000, cb));
      const o = {};
      for (let p = 0; p < g.partitions; p++) o[p] = null;
      for (const r of res) o[r.partition] = typeof r.offset === 'number' && r.offset >= 0 ? r.offset : null;
      return o;
    }),
    close: () => {
      closing = true;
      // consumer close: revoke callback, final commit of the stored offsets (auto mode), LeaveGroup
      return locked(() => call(cb => c.disconnect(cb)));
    },
  });

  while (!closing) {
    if (g.max && processed >= g.max) {
      await sleep(100);
      continue;
    }
    const n = Math.min(500, g.max ? g.max - processed : 500);
    await locked(async () => {
      if (closing) return;
      let msgs;
      try {
        msgs = await call(cb => c.consume(n, cb));
      } catch (e) {
        if (e.code !== ERR_PARTITION_EOF && e.code !== ERR_TIMED_OUT) io.error(`consume: ${e}`);
        return;
      }
      for (const m of msgs) {
        io.emit({
          ev: 'rec', p: m.partition, o: m.offset,
          k: m.key === null || m.key === undefined ? null : Buffer.from(m.key).toString('base64'),
          v: m.value === null ? null : m.value.toString('base64'),
        });
        next.set(m.partition, m.offset + 1);
        processed++;
      }
    });
  }
}

module.exports = { create, metadata, produce, consume, offsets, group };
