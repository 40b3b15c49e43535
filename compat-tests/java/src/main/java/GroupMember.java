// GroupMember: the `group` command of CompatClient: one KafkaConsumer subscribed to a topic in a
// consumer group (classic protocol, Kafka's default settings unless given), for the group
// scenarios of gregor's compat suite. Protocol (JSON lines on stdout, commands on stdin) as in
// compat-tests/compat/group_worker.py:
//   {"ev":"assigned","parts":[..]} {"ev":"revoked","parts":[..]} {"ev":"rec","p","o","k","v"}
//   {"ev":"commit_ok","offsets":{..}} {"ev":"committed","offsets":{..}} {"ev":"error","msg"}
//   stdin: commit | committed | close
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.LinkedBlockingQueue;

import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupMember {
    static synchronized void emit(String json) {
        CompatClient.out.println(json);
        CompatClient.out.flush();
    }

    static String parts(Collection<TopicPartition> tps) {
        List<Integer> ps = new ArrayList<>();
        for (TopicPartition tp : tps) ps.add(tp.partition());
        Collections.sort(ps);
        return ps.toString().replace(" ", "");
    }

    static String offsetsJson(Map<Integer, Long> m) {
        StringBuilder sb = new StringBuilder("{");
        for (Map.Entry<Integer, Long> e : new TreeMap<>(m).entrySet()) {
            if (sb.length() > 1) sb.append(',');
            sb.append('"').append(e.getKey()).append("\":").append(e.getValue() == null ? "null" : e.getValue().toString());
        }
        return sb.append('}').toString();
    }

    static void run(String bootstrap, Map<String, String> opt) throws Exception {
        String topic = opt.get("topic");
        int partitions = Integer.parseInt(opt.get("partitions"));
        boolean auto = "1".equals(opt.getOrDefault("auto_commit", "1"));
        long max = Long.parseLong(opt.getOrDefault("max_records", "0"));
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, opt.get("group"));
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, Boolean.toString(auto));
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        if (opt.containsKey("session_ms")) p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, opt.get("session_ms"));
        if (opt.containsKey("heartbeat_ms")) p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, opt.get("heartbeat_ms"));
        if (opt.containsKey("instance_id")) p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, opt.get("instance_id"));
        // KIP-848: "consumer" (the broker assigns; session and heartbeat are broker settings).
        if (opt.containsKey("protocol")) p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, opt.get("protocol"));
        // Classic protocol, client-driven incremental rebalancing.
        if ("cooperative-sticky".equals(opt.get("assignor")))
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                  "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");

        LinkedBlockingQueue<String> cmds = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) if (!line.isBlank()) cmds.add(line.trim());
            } catch (Exception ignored) {
                // stdin gone: treated as close below
            }
            cmds.add("close");
        });
        reader.setDaemon(true);
        reader.start();

        Map<Integer, Long> next = new HashMap<>();
        long processed = 0;
        try (KafkaConsumer<byte[], byte[]> c =
                     new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                    emit("{\"ev\":\"revoked\",\"parts\":" + parts(ps) + "}");
                }

                public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                    emit("{\"ev\":\"assigned\",\"parts\":" + parts(ps) + "}");
                }

                public void onPartitionsLost(Collection<TopicPartition> ps) {
                    emit("{\"ev\":\"revoked\",\"lost\":true,\"parts\":" + parts(ps) + "}");
                }
            });
            while (true) {
                String cmd = cmds.poll();
                if ("close".equals(cmd)) break;
                if ("commit".equals(cmd)) {
                    Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                    for (Map.Entry<Integer, Long> e : next.entrySet())
                        offs.put(new TopicPartition(topic, e.getKey()), new OffsetAndMetadata(e.getValue()));
                    c.commitSync(offs, Duration.ofSeconds(20));
                    emit("{\"ev\":\"commit_ok\",\"offsets\":" + offsetsJson(next) + "}");
                } else if ("committed".equals(cmd)) {
                    Set<TopicPartition> tps = new HashSet<>();
                    for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(topic, i));
                    Map<Integer, Long> got = new HashMap<>();
                    for (Map.Entry<TopicPartition, OffsetAndMetadata> e : c.committed(tps, Duration.ofSeconds(20)).entrySet())
                        got.put(e.getKey().partition(), e.getValue() == null ? null : e.getValue().offset());
                    for (int i = 0; i < partitions; i++) got.putIfAbsent(i, null);
                    emit("{\"ev\":\"committed\",\"offsets\":" + offsetsJson(got) + "}");
                } else if (cmd != null) {
                    emit("{\"ev\":\"error\",\"msg\":" + CompatClient.jstr("unknown command " + cmd) + "}");
                }
                if (max > 0 && processed >= max) {
                    Thread.sleep(100);
                    continue;
                }
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
                    if (max > 0 && processed >= max && !auto) break;
                    emit("{\"ev\":\"rec\",\"p\":" + r.partition() + ",\"o\":" + r.offset()
                            + ",\"k\":" + CompatClient.b64(r.key()) + ",\"v\":" + CompatClient.b64(r.value()) + "}");
                    next.put(r.partition(), r.offset() + 1);
                    processed++;
                }
            }
        } catch (Exception e) {
            emit("{\"ev\":\"error\",\"msg\":" + CompatClient.jstr(e.toString()) + "}");
            CompatClient.out.flush();
            System.exit(1);
        }
    }
}
