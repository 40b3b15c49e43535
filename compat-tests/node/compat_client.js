#!/usr/bin/env node
// compat_client.js: the JavaScript clients of gregor's compat suite, KafkaJS (`kafkajs`) and
// Confluent's librdkafka-based @confluentinc/kafka-javascript (`confluent-js`). The Python
// driver (compat-tests/compat/clients/nodeclients.py) runs it as
//   node compat_client.js <lib> <bootstrap> <command> key=value...
// and reads one JSON object per line from stdout, exactly as from the Java client
// (compat-tests/java/CompatClient.java). Commands:
//   create     topic= partitions=          admin API, prints {"created":true}
//   metadata   topic=                      one {"partition","leader"} per partition
//   produce    topic= [compression=] [idempotent=0|1]
//                                          messages on stdin, one per line (format below);
//                                          prints {"i","partition","offset"} per message, in
//                                          input order ({"i","error"} and exit 1 on failure)
//   consume    topic= partition= start= count= [timeout_ms=]
//                                          prints one record object per line
//   offsets    topic= partition= [ts=t1,t2,...]
//                                          {"earliest","latest","by_ts":[offset or null per ts]}
//   group      group= topic= partitions= [auto_commit=0|1] [max_records=N] [session_ms=]
//              [heartbeat_ms=] [instance_id=] [protocol=consumer] [assignor=cooperative-sticky]
//                                          one subscribed group member; the JSON-lines/stdin
//                                          protocol of compat/group_worker.py
// Stdin message line: partition TAB timestamp|- TAB key|- TAB value|- TAB headers
// where key/value are base64 ("-" = null) and headers is a comma-separated list of
// base64(name):base64(value) or base64(name) alone for a null value (empty = no headers).
// How each library does each command: kafkajs_client.js and confluent_client.js.
'use strict';

const readline = require('readline');

function b64(b) {
  return b === null || b === undefined ? null : Buffer.from(b).toString('base64');
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** process.exit once stdout is written out (a write to a full pipe is queued, not lost, until
 * exit). */
function exit(code) {
  if (process.stdout.writableLength === 0) process.exit(code);
  process.stdout.write('', () => process.exit(code));
}

function parseMessages(text) {
  const msgs = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split('\t');
    const headers = [];
    if (f[4]) {
      for (const h of f[4].split(',')) {
        const i = h.indexOf(':');
        if (i < 0) headers.push([Buffer.from(h, 'base64').toString(), null]);
        else headers.push([Buffer.from(h.slice(0, i), 'base64').toString(), Buffer.from(h.slice(i + 1), 'base64')]);
      }
    }
    msgs.push({
      partition: parseInt(f[0], 10),
      timestamp: f[1] === '-' ? null : Number(f[1]),
      key: f[2] === '-' ? null : Buffer.from(f[2], 'base64'),
      value: f[3] === '-' ? null : Buffer.from(f[3], 'base64'),
      headers,
    });
  }
  return msgs;
}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', c => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString()));
    process.stdin.on('error', reject);
  });
}

/** The group member's side of the protocol: events out, commands in (one at a time). */
class GroupIO {
  constructor() {
    this.handlers = null;
    this.queue = Promise.resolve();
    this.closing = false;
  }

  emit(obj) {
    out(obj);
  }

  error(msg) {
    out({ ev: 'error', msg: String(msg) });
  }

  /** handlers: {commit: async () => offsets, committed: async () => offsets, close: async () => {}} */
  start(handlers) {
    this.handlers = handlers;
    const rl = readline.createInterface({ input: process.stdin });
    rl.on('line', line => {
      const cmd = line.trim();
      if (cmd) this.run(cmd);
    });
    rl.on('close', () => this.run('close')); // stdin gone: the driver went away
  }

  run(cmd) {
    this.queue = this.queue.then(async () => {
      if (this.closing) return;
      try {
        if (cmd === 'commit') {
          this.emit({ ev: 'commit_ok', offsets: await this.handlers.commit() });
        } else if (cmd === 'committed') {
          this.emit({ ev: 'committed', offsets: await this.handlers.committed() });
        } else if (cmd === 'close') {
          this.closing = true;
          await this.handlers.close();
          exit(0);
        } else {
          this.error(`unknown command ${cmd}`);
        }
      } catch (e) {
        this.error(`${cmd}: ${e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e}`);
        if (cmd === 'close') exit(1);
      }
    });
  }
}

async function main() {
  const [lib, bootstrap, cmd, ...kv] = process.argv.slice(2);
  if (!lib || !bootstrap || !cmd) {
    process.stderr.write('usage: compat_client.js kafkajs|confluent-js <bootstrap> <command> key=value...\n');
    process.exit(2);
  }
  const opt = {};
  for (const a of kv) {
    const i = a.indexOf('=');
    opt[a.slice(0, i)] = a.slice(i + 1);
  }
  const impls = { kafkajs: './kafkajs_client', 'confluent-js': './confluent_client' };
  if (!impls[lib]) {
    process.stderr.write(`unknown lib ${lib}\n`);
    process.exit(2);
  }
  const impl = require(impls[lib]);
  const topic = opt.topic;
  switch (cmd) {
    case 'create':
      await impl.create(bootstrap, topic, parseInt(opt.partitions, 10));
      out({ created: true });
      break;
    case 'metadata':
      for (const [partition, leader] of await impl.metadata(bootstrap, topic)) out({ partition, leader });
      break;
    case 'produce': {
      const msgs = parseMessages(await readStdin());
      const results = await impl.produce(bootstrap, topic, msgs, opt.compression || null, opt.idempotent === '1');
      let failed = false;
      results.forEach((r, i) => {
        if (!r || r.error !== undefined) {
          failed = true;
          out({ i, error: r ? String(r.error) : 'no delivery report' });
        } else {
          out({ i, partition: r.partition, offset: r.offset });
        }
      });
      if (failed) exit(1);
      else exit(0);
      return;
    }
    case 'consume':
      await impl.consume(bootstrap, topic, parseInt(opt.partition, 10), parseInt(opt.start, 10),
        parseInt(opt.count, 10), parseInt(opt.timeout_ms || '60000', 10),
        r => out({ partition: r.partition, offset: r.offset, timestamp: r.timestamp, tstype: r.tstype,
                   key: b64(r.key), value: b64(r.value), headers: r.headers.map(([k, v]) => [k, b64(v)]) }));
      break;
    case 'offsets': {
      const ts = opt.ts ? opt.ts.split(',').map(Number) : [];
      const [earliest, latest, byTs] = await impl.offsets(bootstrap, topic, parseInt(opt.partition, 10), ts);
      out({ earliest, latest, by_ts: byTs });
      break;
    }
    case 'group': {
      const io = new GroupIO();
      const g = {
        group: opt.group, topic, partitions: parseInt(opt.partitions, 10),
        auto: (opt.auto_commit || '1') === '1',
        max: parseInt(opt.max_records || '0', 10) || null,
        sessionMs: opt.session_ms ? parseInt(opt.session_ms, 10) : null,
        heartbeatMs: opt.heartbeat_ms ? parseInt(opt.heartbeat_ms, 10) : null,
        instanceId: opt.instance_id || null,
        protocol: opt.protocol || null,
        assignor: opt.assignor || null,
      };
      try {
        await impl.group(bootstrap, g, io);
      } catch (e) {
        io.error(e && e.stack ? e.stack.split('\n').slice(0, 3).join(' | ') : e);
        exit(1);
      }
      return; // runs until `close`
    }
    default:
      process.stderr.write(`unknown command ${cmd}\n`);
      process.exit(2);
  }
  exit(0);
}

if (require.main === module) {
  main().catch(e => {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
    out({ error: String(e && e.message ? e.message : e) });
    exit(1);
  });
}
