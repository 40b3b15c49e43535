// KafkaJS 2.x side of compat_client.js (lib `kafkajs`).
//
// What KafkaJS has and how each command uses it:
// - Compression: gzip is built in; snappy, lz4 and zstd are registered in CompressionCodecs:
//   kafkajs-snappy (pure JS, snappyjs) and kafkajs-lz4 (node-lz4), the codec packages KafkaJS's
//   documentation names, and for zstd a three-line codec over zstd-napi, since KafkaJS's own
//   @kafkajs/zstd (cppzst 2.0.6) no longer compiles against Node 20's headers.
// - Produce: producer.send() answers one baseOffset per partition. KafkaJS sends all the
//   messages of one send() for one partition as ONE record batch (offset deltas 0..n-1 in
//   array order, producer/sendMessages.js, recordBatch encoder), so message i of that
//   partition is at baseOffset + i exactly. One send() must stay under the broker's
//   message.max.bytes per partition batch (KafkaJS does not split), so the messages are sent
//   in chunks of at most CHUNK_BYTES, one chunk after the other.
// - Headers are an object in KafkaJS (duplicates as an array under one key): duplicate keys
//   work when they are adjacent, which the suite's headers are; null header values cannot be
//   sent (the record encoder's size computation calls Buffer.byteLength(null) and throws).
// - Consume: KafkaJS has no assign(); a one-off group (never committing) subscribes, pauses
//   every other partition and seeks the wanted one.
// - Offsets: admin.fetchTopicOffsets (low/high) and admin.fetchTopicOffsetsByTimestamp, which
//   answers the high watermark where the broker said "no such record" (-1): an answer equal to
//   the high watermark is reported as null (no record can be at the high watermark).
// - Groups: classic protocol, KafkaJS's own round-robin assigner, eager rebalancing. KafkaJS has
//   no rebalance listener: "assigned" is emitted from the GROUP_JOIN instrumentation event
//   (payload.memberAssignment) and "revoked" (everything held) from REBALANCING, i.e. when the
//   member learns of a rebalance and stops fetching, or at a GROUP_JOIN that finds partitions
//   still held. No static membership (no group.instance.id option), no cooperative assignor,
//   no KIP-848. committed(): KafkaJS's consumer has none; admin.fetchOffsets is its OffsetFetch.
//   KafkaJS heartbeats only between fetches, so a member waits at most min(5000, heartbeat_ms)
//   in a fetch (maxWaitTimeInMs, default 5000), else the heartbeat interval cannot be kept.
'use strict';

const {
  Kafka, logLevel, CompressionTypes, CompressionCodecs, Partitioners,
} = require('kafkajs');
const SnappyCodec = require('kafkajs-snappy');
const LZ4Codec = require('kafkajs-lz4');
const zstd = require('zstd-napi');

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) {
    return zstd.compress(encoder.buffer);
  },
  async decompress(buffer) {
    return zstd.decompress(buffer);
  },
});

const CODECS = {
  gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy, lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD, none: CompressionTypes.None,
};
const CHUNK_BYTES = 900 * 1024; // < the broker's message.max.bytes (1 MiB) per batch

// COMPAT_KAFKAJS_LOG_LEVEL=info|debug: KafkaJS's own log (stderr; stdout is the protocol).
const LEVEL = {
  nothing: logLevel.NOTHING, error: logLevel.ERROR, warn: logLevel.WARN, info: logLevel.INFO, debug: logLevel.DEBUG,
}[process.env.COMPAT_KAFKAJS_LOG_LEVEL || 'warn'];

const logCreator = () => ({ namespace, label, log }) => {
  const { message, ...extra } = log;
  process.stderr.write(`${new Date().toISOString()} ${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`);
};

function kafka(bootstrap) {
  return new Kafka({
    clientId: 'compat-kafkajs',
    brokers: bootstrap.split(','),
    logLevel: LEVEL,
    logCreator,
    requestTimeout: 30000,
  });
}

async function withAdmin(bootstrap, fn) {
  const admin = kafka(bootstrap).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

async function create(bootstrap, topic, partitions) {
  const created = await withAdmin(bootstrap, admin => admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true, timeout: 20000,
  }));
  if (!created) throw new Error(`createTopics: topic ${topic} was not created (already exists?)`);
}

async function metadata(bootstrap, topic) {
  const md = await withAdmin(bootstrap, admin => admin.fetchTopicMetadata({ topics: [topic] }));
  const t = md.topics.find(x => x.name === topic);
  if (!t) throw new Error(`no metadata for ${topic}`);
  return t.partitions.map(p => [p.partitionId, p.leader]).sort((a, b) => a[0] - b[0]);
}

/** [[key, value]] -> KafkaJS's header object (duplicates as arrays, in order). */
function toHeaders(list) {
  const h = {};
  let last = null;
  for (const [k, v] of list) {
    if (/^(0|[1-9][0-9]*)$/.test(k)) {
      throw new Error(`header key ${k}: KafkaJS headers are an object, and JavaScript puts integer-like keys first`);
    }
    if (Object.prototype.hasOwnProperty.call(h, k)) {
      if (last !== k) throw new Error(`header key ${k} repeats after another key: KafkaJS headers are an object`);
      if (!Array.isArray(h[k])) h[k] = [h[k]];
      h[k].push(v);
    } else {
      h[k] = v;
    }
    last = k;
  }
  return h;
}

/** KafkaJS's header object -> [[key, value]] (arrays are duplicate keys, in record order). */
function fromHeaders(obj) {
  const list = [];
  for (const k of Object.keys(obj || {})) {
    const v = obj[k];
    for (const x of Array.isArray(v) ? v : [v]) list.push([k, x]);
  }
  return list;
}

function approxSize(m) {
  let n = 32 + (m.key ? m.key.length : 0) + (m.value ? m.value.length : 0);
  for (const [k, v] of m.headers) n += 8 + Buffer.byteLength(k) + (v ? v.length : 0);
  return n;
}

async function produce(bootstrap, topic, msgs, compression, idempotent) {
  if (compression && CODECS[compression] === undefined) throw new Error(`unknown compression ${compression}`);
  const producer = kafka(bootstrap).producer({
    idempotent,
    maxInFlightRequests: idempotent ? 1 : undefined,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner, // every message names its partition
  });
  await producer.connect();
  const results = new Array(msgs.length);
  try {
    let i = 0;
    while (i < msgs.length) {
      let j = i;
      let bytes = 0;
      while (j < msgs.length && (j === i || bytes + approxSize(msgs[j]) <= CHUNK_BYTES)) {
        bytes += approxSize(msgs[j]);
        j++;
      }
      const chunk = msgs.slice(i, j);
      let meta;
      try {
        meta = await producer.send({
          topic,
          acks: -1,
          timeout: 30000,
          compression: compression ? CODECS[compression] : CompressionTypes.None,
          messages: chunk.map(m => {
            const km = { partition: m.partition, key: m.key, value: m.value, headers: toHeaders(m.headers) };
            if (m.timestamp !== null) km.timestamp = String(m.timestamp);
            return km;
          }),
        });
      } catch (e) {
        for (let k = i; k < msgs.length; k++) results[k] = { error: `${e.name}: ${e.message}` };
        return results;
      }
      const base = new Map();
      for (const r of meta) {
        if (r.errorCode) throw new Error(`partition ${r.partition}: error code ${r.errorCode}`);
        base.set(r.partition, BigInt(r.baseOffset));
      }
      const idx = new Map();
      for (let k = i; k < j; k++) {
        const p = msgs[k].partition;
        const n = idx.get(p) || 0;
        idx.set(p, n + 1);
        if (!base.has(p)) {
          results[k] = { error: `no produce response for partition ${p}` };
        } else {
          results[k] = { partition: p, offset: Number(base.get(p) + BigInt(n)) };
        }
      }
      i = j;
    }
  } finally {
    await producer.disconnect();
  }
  return results;
}

async function consume(bootstrap, topic, partition, start, count, timeoutMs, onRecord) {
  if (count <= 0) return;
  const consumer = kafka(bootstrap).consumer({
    groupId: `compat-kafkajs-read-${process.pid}-${Date.now()}`,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 500,
  });
  let got = 0;
  let done;
  const finished = new Promise(resolve => { done = resolve; });
  let crash = null;
  consumer.on(consumer.events.CRASH, e => { crash = e.payload.error; done(); });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, pause, isStale }) => {
        if (batch.partition !== partition) {
          pause();
          return;
        }
        for (const m of batch.messages) {
          if (got >= count || isStale()) break; // isStale: fetched before the seek below
          if (Number(m.offset) < start) continue;
          const bc = m.batchContext || {};
          onRecord({
            partition, offset: Number(m.offset), timestamp: Number(m.timestamp),
            tstype: bc.timestampType === 1 ? 'LogAppendTime' : 'CreateTime',
            key: m.key, value: m.value, headers: fromHeaders(m.headers),
          });
          got++;
          resolveOffset(m.offset);
        }
        if (got >= count) done();
      },
    });
    consumer.seek({ topic, partition, offset: String(start) });
    let timer;
    await Promise.race([finished, new Promise(resolve => { timer = setTimeout(resolve, timeoutMs); })]);
    clearTimeout(timer);
    if (crash) throw crash;
  } finally {
    await consumer.disconnect();
  }
}

async function offsets(bootstrap, topic, partition, timestamps) {
  return withAdmin(bootstrap, async admin => {
    const o = (await admin.fetchTopicOffsets(topic)).find(x => x.partition === partition);
    if (!o) throw new Error(`no offsets for ${topic}/${partition}`);
    const earliest = Number(o.low);
    const latest = Number(o.high);
    const byTs = [];
    for (const ts of timestamps) {
      const r = (await admin.fetchTopicOffsetsByTimestamp(topic, ts)).find(x => x.partition === partition);
      const off = Number(r.offset);
      byTs.push(off < 0 || off === latest ? null : off);
    }
    return [earliest, latest, byTs];
  });
}

async function group(bootstrap, g, io) {
  for (const [what, v] of [['group.instance.id (static membership)', g.instanceId],
    ['group.protocol (KIP-848)', g.protocol], ['a cooperative assignor', g.assignor]]) {
    if (v) throw new Error(`KafkaJS has no ${what}`);
  }
  const client = kafka(bootstrap);
  const conf = { groupId: g.group, allowAutoTopicCreation: false };
  if (g.sessionMs) conf.sessionTimeout = g.sessionMs;
  if (g.heartbeatMs) {
    conf.heartbeatInterval = g.heartbeatMs;
    conf.maxWaitTimeInMs = Math.min(5000, g.heartbeatMs);
  }
  const consumer = client.consumer(conf);
  const admin = client.admin();
  let held = [];
  const next = new Map(); // partition -> last processed offset + 1
  let processed = 0;

  consumer.on(consumer.events.REBALANCING, () => {
    if (held.length) io.emit({ ev: 'revoked', parts: held });
    held = [];
  });
  consumer.on(consumer.events.GROUP_JOIN, e => {
    if (held.length) io.emit({ ev: 'revoked', parts: held });
    held = [...(e.payload.memberAssignment[g.topic] || [])].sort((a, b) => a - b);
    io.emit({ ev: 'assigned', parts: held });
  });
  consumer.on(consumer.events.CRASH, e => {
    io.error(`consumer crashed: ${e.payload.error}${e.payload.restart ? ' (restarting)' : ''}`);
  });

  await admin.connect();
  await consumer.connect();
  await consumer.subscribe({ topics: [g.topic], fromBeginning: true });
  await consumer.run({
    autoCommit: g.auto, // after every batch: the offsets resolved below
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset }) => {
      for (const m of batch.messages) {
        if (g.max && processed >= g.max) break;
        const o = Number(m.offset);
        io.emit({
          ev: 'rec', p: batch.partition, o,
          k: m.key === null ? null : m.key.toString('base64'),
          v: m.value === null ? null : m.value.toString('base64'),
        });
        next.set(batch.partition, o + 1);
        processed++;
        resolveOffset(m.offset);
      }
      if (g.max && processed >= g.max) consumer.pause([{ topic: g.topic }]);
    },
  });

  io.start({
    async commit() {
      const offs = [...next.entries()].map(([partition, o]) => ({ topic: g.topic, partition, offset: String(o) }));
      if (offs.length) await consumer.commitOffsets(offs);
      return Object.fromEntries([...next.entries()].sort((a, b) => a[0] - b[0]));
    },
    async committed() {
      const res = await admin.fetchOffsets({ groupId: g.group, topics: [g.topic] });
      const t = res.find(x => x.topic === g.topic);
      const o = {};
      for (let p = 0; p < g.partitions; p++) o[p] = null;
      for (const { partition, offset } of (t ? t.partitions : [])) {
        o[partition] = Number(offset) < 0 ? null : Number(offset);
      }
      return o;
    },
    async close() {
      await consumer.disconnect(); // LeaveGroup
      await admin.disconnect();
    },
  });
}

module.exports = { create, metadata, produce, consume, offsets, group };
