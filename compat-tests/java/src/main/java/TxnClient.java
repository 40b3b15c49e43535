// TxnClient: Java kafka-clients 4.x in gregor's transaction tests (compat-tests/transactions_test.py).
//   java -cp ... TxnClient <bootstrap> <command> key=value...
// Record values are UTF-8 strings; every output line is one JSON object. Commands:
//   produce  topic= partitions= txn_id= rounds=commit,abort,... count= prefix=
//            one KafkaProducer with transactional.id: per round, begin, send `count` records
//            "<prefix>-<round>-<i>" to partition i % partitions, then flush + commit or
//            flush + abort; prints {"round","outcome","values":[..]} after each round.
//   read     topic= partitions= levels=read_committed,read_uncommitted [timeout_ms=]
//            per level, one KafkaConsumer (assign, no group) from offset 0 until its position
//            reaches endOffsets (the last stable offset at read_committed) on every partition;
//            prints {"level","values":[..]} (partition order) per level.
//   zombie   topic= txn_id= prefix=
//            begin, send "<prefix>-1", flush, print {"state":"sent"}; wait for a line on stdin,
//            then send "<prefix>-2", flush and commit: prints {"state":"done","send_error",
//            "commit_error"} where each error is the chain of exception class names (outermost
//            first, [] = none).
//   copier   source= sink= txn_id= group= kill_after= end=
//            consume-transform-produce: KafkaConsumer (assign partition 0 of source, group.id,
//            read_committed, no auto commit) + transactional KafkaProducer; one transaction per
//            poll batch with sendOffsetsToTransaction(offsets, consumer.groupMetadata()); every
//            25 copied records it flushes, and once kill_after (>= 0) records are copied it
//            kills its own process with SIGKILL (kill -9 <pid>), mid-transaction. It stops when
//            its position reaches `end` with nothing more to poll; prints {"copied":N}.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnClient {
    static PrintStream out;

    public static void main(String[] args) throws Exception {
        out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, "UTF-8");
        if (args.length < 2) {
            System.err.println("usage: TxnClient <bootstrap> <command> key=value...");
            System.exit(2);
        }
        String bootstrap = args[0];
        Map<String, String> opt = new HashMap<>();
        for (int i = 2; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            opt.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        switch (args[1]) {
            case "produce" -> produce(bootstrap, opt);
            case "read" -> read(bootstrap, opt);
            case "zombie" -> zombie(bootstrap, opt);
            case "copier" -> copier(bootstrap, opt);
            default -> {
                System.err.println("unknown command " + args[1]);
                System.exit(2);
            }
        }
        out.flush();
        System.exit(0);
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

    static String jlist(Collection<String> xs) {
        StringBuilder sb = new StringBuilder("[");
        for (String x : xs) {
            if (sb.length() > 1) sb.append(',');
            sb.append(jstr(x));
        }
        return sb.append(']').toString();
    }

    /** The class names of an exception and its causes, outermost first. */
    static List<String> chain(Throwable t) {
        List<String> names = new ArrayList<>();
        for (; t != null && names.size() < 8; t = t.getCause()) names.add(t.getClass().getSimpleName());
        return names;
    }

    static KafkaProducer<String, String> txnProducer(String bootstrap, String txnId) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        KafkaProducer<String, String> producer =
                new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
        producer.initTransactions();
        return producer;
    }

    static Properties consumerProps(String bootstrap, String level) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, level);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        return p;
    }

    static void produce(String bootstrap, Map<String, String> opt) throws Exception {
        String topic = opt.get("topic");
        int partitions = Integer.parseInt(opt.get("partitions"));
        int count = Integer.parseInt(opt.get("count"));
        String prefix = opt.get("prefix");
        String[] rounds = opt.get("rounds").split(",");
        try (KafkaProducer<String, String> producer = txnProducer(bootstrap, opt.get("txn_id"))) {
            for (int r = 0; r < rounds.length; r++) {
                producer.beginTransaction();
                List<String> values = new ArrayList<>();
                List<Future<RecordMetadata>> acks = new ArrayList<>();
                for (int i = 0; i < count; i++) {
                    String v = prefix + "-" + r + "-" + i;
                    values.add(v);
                    acks.add(producer.send(new ProducerRecord<>(topic, i % partitions, null, v)));
                }
                producer.flush();
                for (Future<RecordMetadata> f : acks) f.get(30, TimeUnit.SECONDS);  // throws on a failed send
                switch (rounds[r]) {
                    case "commit" -> producer.commitTransaction();
                    case "abort" -> producer.abortTransaction();
                    default -> throw new IllegalArgumentException("round " + rounds[r]);
                }
                out.println("{\"round\":" + r + ",\"outcome\":" + jstr(rounds[r]) + ",\"values\":" + jlist(values) + "}");
            }
        }
    }

    static void read(String bootstrap, Map<String, String> opt) throws Exception {
        String topic = opt.get("topic");
        int partitions = Integer.parseInt(opt.get("partitions"));
        long timeoutMs = Long.parseLong(opt.getOrDefault("timeout_ms", "20000"));
        for (String level : opt.get("levels").split(",")) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
            Map<Integer, List<String>> got = new TreeMap<>();
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(bootstrap, level),
                    new StringDeserializer(), new StringDeserializer())) {
                c.assign(tps);
                c.seekToBeginning(tps);
                // At read_committed, endOffsets is the last stable offset.
                Map<TopicPartition, Long> end = c.endOffsets(tps);
                long deadline = System.currentTimeMillis() + timeoutMs;
                while (true) {
                    boolean done = true;
                    for (TopicPartition tp : tps) if (c.position(tp) < end.get(tp)) done = false;
                    if (done) break;
                    if (System.currentTimeMillis() > deadline) {
                        Map<Integer, Long> pos = new TreeMap<>();
                        for (TopicPartition tp : tps) pos.put(tp.partition(), c.position(tp));
                        throw new RuntimeException(topic + " at " + level + ": positions " + pos +
                                " did not reach the end offsets " + end + " within " + timeoutMs + " ms");
                    }
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500)))
                        got.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.value());
                }
            }
            List<String> values = new ArrayList<>();
            for (List<String> vs : got.values()) values.addAll(vs);
            out.println("{\"level\":" + jstr(level) + ",\"values\":" + jlist(values) + "}");
        }
    }

    static void zombie(String bootstrap, Map<String, String> opt) throws Exception {
        String topic = opt.get("topic");
        String prefix = opt.get("prefix");
        KafkaProducer<String, String> producer = txnProducer(bootstrap, opt.get("txn_id"));
        producer.beginTransaction();
        producer.send(new ProducerRecord<>(topic, 0, null, prefix + "-1")).get(30, TimeUnit.SECONDS);
        out.println("{\"state\":\"sent\"}");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        if (in.readLine() == null) throw new RuntimeException("stdin closed before the go-ahead");
        List<String> sendError = List.of();
        List<String> commitError = List.of();
        try {
            producer.send(new ProducerRecord<>(topic, 0, null, prefix + "-2")).get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            sendError = chain(e.getCause());
        } catch (Exception e) {
            sendError = chain(e);
        }
        try {
            producer.commitTransaction();
        } catch (Exception e) {
            commitError = chain(e);
        }
        out.println("{\"state\":\"done\",\"send_error\":" + jlist(sendError) + ",\"commit_error\":" + jlist(commitError) + "}");
        producer.close(Duration.ofSeconds(5));
    }

    static void copier(String bootstrap, Map<String, String> opt) throws Exception {
        String sink = opt.get("sink");
        long killAfter = Long.parseLong(opt.get("kill_after"));
        long end = Long.parseLong(opt.get("end"));
        TopicPartition tp0 = new TopicPartition(opt.get("source"), 0);
        Properties cp = consumerProps(bootstrap, "read_committed");
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, opt.get("group"));
        cp.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "50");
        long copied = 0;
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer());
             KafkaProducer<String, String> producer = txnProducer(bootstrap, opt.get("txn_id"))) {
            // Assigned, not subscribed: a restarted copier does not wait for the group to expire
            // the killed one's membership. The consumer starts at the group's committed offset.
            c.assign(List.of(tp0));
            long deadline = System.currentTimeMillis() + 120_000;
            while (System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> batch = c.poll(Duration.ofSeconds(1));
                if (batch.isEmpty()) {
                    if (c.position(tp0) >= end) break;
                    continue;
                }
                producer.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : batch) {
                    producer.send(new ProducerRecord<>(sink, r.value()));
                    copied++;
                    if (copied % 25 == 0) {
                        producer.flush();
                        if (killAfter >= 0 && copied >= killAfter) killSelf();
                    }
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                producer.sendOffsetsToTransaction(offsets, c.groupMetadata());
                producer.commitTransaction();
            }
            if (c.position(tp0) < end)
                throw new RuntimeException("position " + c.position(tp0) + " short of " + end + " after 120 s");
        }
        out.println("{\"copied\":" + copied + "}");
    }

    /** SIGKILL of this JVM, as kill -9 from outside: no shutdown hooks, no producer close. */
    static void killSelf() throws Exception {
        out.flush();
        long pid = ProcessHandle.current().pid();
        new ProcessBuilder("sh", "-c", "kill -9 " + pid).inheritIO().start().waitFor();  // the shell's kill
        Thread.sleep(10_000);
        throw new IllegalStateException("kill -9 " + pid + " did not kill this process");
    }
}
