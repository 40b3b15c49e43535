// CompatClient: the Java (kafka-clients 4.x) adapter of gregor's compat suite.
// The Python driver (compat-tests/compat/clients/java.py) runs it as
//   java -cp ... CompatClient <bootstrap> <command> key=value...
// and reads one JSON object per line from stdout. Commands:
//   create     topic= partitions=          Admin.createTopics, prints {"created":true}
//   metadata   topic=                      Admin.describeTopics, one {"partition","leader"} per partition
//   produce    topic= [compression=]       messages on stdin, one per line (format below);
//                                          prints {"i","partition","offset"} per message, in input order
//   consume    topic= partition= start= count= [timeout_ms=]
//                                          assign + seek, prints one record object per line
//   offsets    topic= partition= [ts=t1,t2,...]
//                                          {"earliest","latest","by_ts":[offset or null per ts]}
//   group      group= topic= partitions= [auto_commit=0|1] [max_records=N] [session_ms=]
//              [heartbeat_ms=] [instance_id=]
//                                          one subscribed group member (classic protocol); same
//                                          JSON-lines/stdin protocol as compat/group_worker.py
// Stdin message line: partition TAB timestamp|- TAB key|- TAB value|- TAB headers
// where key/value are base64 ("-" = null) and headers is a comma-separated list of
// base64(name):base64(value) or base64(name) alone for a null value (empty = no headers).
// The producer keeps Kafka's defaults (idempotent, acks=all) except compression.type.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class CompatClient {
    static final Base64.Encoder B64E = Base64.getEncoder();
    static final Base64.Decoder B64D = Base64.getDecoder();
    static PrintStream out;

    public static void main(String[] args) throws Exception {
        out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, "UTF-8");
        if (args.length < 2) {
            System.err.println("usage: CompatClient <bootstrap> <command> key=value...");
            System.exit(2);
        }
        String bootstrap = args[0];
        String cmd = args[1];
        Map<String, String> opt = new HashMap<>();
        for (int i = 2; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            opt.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        switch (cmd) {
            case "create" -> create(bootstrap, opt);
            case "metadata" -> metadata(bootstrap, opt);
            case "produce" -> produce(bootstrap, opt);
            case "consume" -> consume(bootstrap, opt);
            case "offsets" -> offsets(bootstrap, opt);
            case "group" -> GroupMember.run(bootstrap, opt);
            default -> {
                System.err.println("unknown command " + cmd);
                System.exit(2);
            }
        }
        out.flush();
        System.exit(0);
    }

    static String b64(byte[] b) {
        return b == null ? "null" : "\"" + B64E.encodeToString(b) + "\"";
    }

    static String jstr(String s) {
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') sb.append('\\').append(c);
            else if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
            else sb.append(c);
        }
        return sb.append('"').toString();
    }

    static Properties adminProps(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        return p;
    }

    static void create(String bootstrap, Map<String, String> opt) throws Exception {
        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            NewTopic nt = new NewTopic(opt.get("topic"), Integer.parseInt(opt.get("partitions")), (short) 1);
            admin.createTopics(List.of(nt)).all().get(20, TimeUnit.SECONDS);
            out.println("{\"created\":true}");
        }
    }

    static void metadata(String bootstrap, Map<String, String> opt) throws Exception {
        String topic = opt.get("topic");
        try (Admin admin = Admin.create(adminProps(bootstrap))) {
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames()
                    .get(20, TimeUnit.SECONDS).get(topic);
            for (TopicPartitionInfo p : d.partitions()) {
                int leader = p.leader() == null ? -1 : p.leader().id();
                out.println("{\"partition\":" + p.partition() + ",\"leader\":" + leader + "}");
            }
        }
    }

    static void produce(String bootstrap, Map<String, String> opt) throws Exception {
        String topic = opt.get("topic");
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (opt.containsKey("compression")) p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, opt.get("compression"));
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            String[] f = line.split("\t", -1);
            int partition = Integer.parseInt(f[0]);
            Long ts = f[1].equals("-") ? null : Long.parseLong(f[1]);
            byte[] key = f[2].equals("-") ? null : B64D.decode(f[2]);
            byte[] value = f[3].equals("-") ? null : B64D.decode(f[3]);
            RecordHeaders headers = new RecordHeaders();
            if (!f[4].isEmpty()) {
                for (String h : f[4].split(",")) {
                    int eq = h.indexOf(':');
                    if (eq < 0) headers.add(new String(B64D.decode(h), StandardCharsets.UTF_8), null);
                    else headers.add(new String(B64D.decode(h.substring(0, eq)), StandardCharsets.UTF_8),
                            B64D.decode(h.substring(eq + 1)));
                }
            }
            records.add(new ProducerRecord<>(topic, partition, ts, key, value, headers));
        }
        int n = records.size();
        long[] offsets = new long[n];
        int[] partitions = new int[n];
        String[] errors = new String[n];
        try (KafkaProducer<byte[], byte[]> producer =
                     new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < n; i++) {
                final int idx = i;
                producer.send(records.get(i), (md, ex) -> {
                    if (ex != null) errors[idx] = ex.toString();
                    else {
                        offsets[idx] = md.offset();
                        partitions[idx] = md.partition();
                    }
                });
            }
            producer.flush();
        }
        boolean failed = false;
        for (int i = 0; i < n; i++) {
            if (errors[i] != null) {
                out.println("{\"i\":" + i + ",\"error\":" + jstr(errors[i]) + "}");
                failed = true;
            } else {
                out.println("{\"i\":" + i + ",\"partition\":" + partitions[i] + ",\"offset\":" + offsets[i] + "}");
            }
        }
        out.flush();
        if (failed) System.exit(1);
    }

    static Properties consumerProps(String bootstrap) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        return p;
    }

    static void consume(String bootstrap, Map<String, String> opt) throws Exception {
        TopicPartition tp = new TopicPartition(opt.get("topic"), Integer.parseInt(opt.get("partition")));
        long start = Long.parseLong(opt.get("start"));
        int count = Integer.parseInt(opt.get("count"));
        long deadline = System.currentTimeMillis() + Long.parseLong(opt.getOrDefault("timeout_ms", "60000"));
        int got = 0;
        try (KafkaConsumer<byte[], byte[]> c =
                     new KafkaConsumer<>(consumerProps(bootstrap), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.assign(List.of(tp));
            c.seek(tp, start);
            while (got < count && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    if (got >= count) break;
                    StringBuilder hs = new StringBuilder("[");
                    for (Header h : r.headers()) {
                        if (hs.length() > 1) hs.append(',');
                        hs.append('[').append(jstr(h.key())).append(',').append(b64(h.value())).append(']');
                    }
                    hs.append(']');
                    out.println("{\"partition\":" + r.partition() + ",\"offset\":" + r.offset()
                            + ",\"timestamp\":" + r.timestamp() + ",\"tstype\":" + jstr(r.timestampType().name)
                            + ",\"key\":" + b64(r.key()) + ",\"value\":" + b64(r.value()) + ",\"headers\":" + hs + "}");
                    got++;
                }
            }
        }
    }

    static void offsets(String bootstrap, Map<String, String> opt) throws Exception {
        TopicPartition tp = new TopicPartition(opt.get("topic"), Integer.parseInt(opt.get("partition")));
        try (KafkaConsumer<byte[], byte[]> c =
                     new KafkaConsumer<>(consumerProps(bootstrap), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            Duration t = Duration.ofSeconds(20);
            long earliest = c.beginningOffsets(List.of(tp), t).get(tp);
            long latest = c.endOffsets(List.of(tp), t).get(tp);
            StringBuilder byTs = new StringBuilder("[");
            if (opt.containsKey("ts")) {
                for (String ts : opt.get("ts").split(",")) {
                    OffsetAndTimestamp ot = c.offsetsForTimes(Map.of(tp, Long.parseLong(ts)), t).get(tp);
                    if (byTs.length() > 1) byTs.append(',');
                    byTs.append(ot == null ? "null" : Long.toString(ot.offset()));
                }
            }
            byTs.append(']');
            out.println("{\"earliest\":" + earliest + ",\"latest\":" + latest + ",\"by_ts\":" + byTs + "}");
        }
    }
}
