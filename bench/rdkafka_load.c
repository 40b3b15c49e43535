/*
 * rdkafka_load: the librdkafka load generator of scripts/bench.
 *
 * The JVM perf tools and a Python consumer loop saturate a core before either broker does
 * with small records; this C client (librdkafka, as Debian ships it) drives both brokers
 * with the same code so the broker, not the client, is what is measured. Every mode prints
 * one JSON object on stdout and nothing else there.
 *
 *   rdkafka_load produce -b HOST:PORT -t TOPIC -n RECORDS -s SIZE [-a ACKS] [-P PRODUCERS]
 *                        [-k] [-r RATE] [-l LINGER_MS] [-B BATCH_BYTES] [-T TXN_RECORDS]
 *       RECORDS split over PRODUCERS threads, each its own producer instance; -k gives each
 *       record a key (hash partitioning), else null keys (sticky partitioner); -r caps the
 *       offered load in records/s over all producers (latency at a fixed load). Latency is
 *       send to delivery report, per record.
 *       -T: transactional, TXN_RECORDS records per transaction (acks=all). Each producer has
 *       its own transactional.id (rdkafka-load-PID-THREAD, -X transactional.id=... to name
 *       it), calls rd_kafka_init_transactions once and fetches the topic's metadata (the
 *       clock starts when every producer has done so), then begin, TXN_RECORDS produce calls,
 *       rd_kafka_flush and rd_kafka_commit_transaction per transaction. The flush first
 *       leaves in the commit's time only the EndTxn round trip and librdkafka's hand-offs
 *       (its records are all acknowledged by then); that time, per transaction, gives
 *       commit_p50_ms, commit_p99_ms and commit_p999_ms in the JSON, with "transactions"
 *       their count. A commit error is retried if librdkafka calls it retriable, else the
 *       run stops with it on stderr.
 *   rdkafka_load consume -b HOST:PORT -t TOPIC -p PARTITIONS -n RECORDS
 *       reads RECORDS from offset 0 of every partition (assigned, no group coordination).
 *       librdkafka's isolation.level is read_committed unless -X says read_uncommitted:
 *       transaction markers and aborted records are not counted.
 *   rdkafka_load e2e -b HOST:PORT -t TOPIC -n RECORDS -s SIZE -r RATE [-a ACKS]
 *       produce at RATE with the send time in each value while a consumer reads the topic
 *       from its end: latency is send to receipt, per record (one process, one clock).
 *
 * Every mode takes -X property=value (repeatable): librdkafka properties set on each client
 * after the defaults here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct opts {
    const char *bootstrap, *topic, *acks;
    long records, size, rate;
    int producers, partitions, keyed, linger_ms, batch_bytes;
    long txn_records; /* -T: records per transaction, 0 = not transactional */
    /* -X key=value: librdkafka properties set after the defaults of every client made. */
    const char *extra[16];
    int extras;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, const char *detail) {
    fprintf(stderr, "rdkafka_load: %s: %s\n", what, detail ? detail : "");
    exit(2);
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK)
        die(key, err);
}

static void set_extras(rd_kafka_conf_t *conf, const struct opts *o) {
    for (int i = 0; i < o->extras; i++) {
        char key[256];
        const char *eq = strchr(o->extra[i], '=');
        if (!eq || eq - o->extra[i] >= (long)sizeof key)
            die("-X wants key=value", o->extra[i]);
        memcpy(key, o->extra[i], (size_t)(eq - o->extra[i]));
        key[eq - o->extra[i]] = 0;
        set(conf, key, eq + 1);
    }
}

/* Latencies in microseconds, one slot per record, sorted at the end for percentiles. */
struct latencies {
    uint32_t *us;
    long count, capacity;
    pthread_mutex_t lock;
};

static void latency_add(struct latencies *l, int64_t ns) {
    uint32_t us = ns < 0 ? 0 : (ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ns / 1000));
    pthread_mutex_lock(&l->lock);
    if (l->count < l->capacity)
        l->us[l->count++] = us;
    pthread_mutex_unlock(&l->lock);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(struct latencies *l, double q) {
    if (l->count == 0)
        return -1;
    long i = (long)(q * (double)(l->count - 1));
    return l->us[i] / 1000.0;
}

/* ---- produce ---------------------------------------------------------------------------- */

struct producer_thread {
    const struct opts *o;
    long records, first;
    int index;
    double rate; /* records/s for this thread, 0 = as fast as possible */
    struct latencies *lat;
    struct latencies *commit_lat; /* -T: per rd_kafka_commit_transaction call */
    pthread_barrier_t *ready;     /* -T: every producer initialised; the clock starts */
    long delivered, failed;
    pthread_t thread;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    struct producer_thread *pt = opaque;
    (void)rk;
    if (m->err) {
        pt->failed++;
        return;
    }
    pt->delivered++;
    latency_add(pt->lat, now_ns() - (int64_t)(intptr_t)m->_private);
}

typedef void (*delivery_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *);

static rd_kafka_t *new_producer(const struct opts *o, int linger_ms, delivery_cb on_dr,
                                void *opaque, const char *transactional_id) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char buf[32];
    set(conf, "bootstrap.servers", o->bootstrap);
    set(conf, "acks", o->acks);
    snprintf(buf, sizeof buf, "%d", linger_ms);
    set(conf, "linger.ms", buf);
    snprintf(buf, sizeof buf, "%d", o->batch_bytes);
    set(conf, "batch.size", buf);
    set(conf, "queue.buffering.max.kbytes", "1048576");
    set(conf, "queue.buffering.max.messages", "1000000");
    set(conf, "compression.type", "none");
    if (transactional_id)
        set(conf, "transactional.id", transactional_id);
    set_extras(conf, o);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_conf_set_opaque(conf, opaque);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk)
        die("producer", err);
    return rk;
}

/* Stops the run on a transactional API error (after printing it), unless it is retriable:
 * then returns 1 so the caller tries the call again. */
static int txn_check(rd_kafka_error_t *error, const char *what) {
    if (!error)
        return 0;
    int retriable = rd_kafka_error_is_retriable(error);
    fprintf(stderr, "rdkafka_load: %s: %s%s%s\n", what, rd_kafka_error_string(error),
            retriable ? " (retriable, retrying)" : "",
            rd_kafka_error_txn_requires_abort(error) ? " (transaction requires abort)" : "");
    rd_kafka_error_destroy(error);
    if (!retriable)
        exit(2);
    return 1;
}

/* -T: commits the open transaction, timing the commit alone (see the header). */
static void commit_txn(rd_kafka_t *rk, struct producer_thread *pt) {
    while (rd_kafka_flush(rk, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT)
        ;
    int64_t t0 = now_ns();
    while (txn_check(rd_kafka_commit_transaction(rk, 60000), "commit_transaction"))
        ;
    latency_add(pt->commit_lat, now_ns() - t0);
}

static void *produce_loop(void *arg) {
    struct producer_thread *pt = arg;
    const struct opts *o = pt->o;
    char txn_id[64];
    snprintf(txn_id, sizeof txn_id, "rdkafka-load-%ld-%d", (long)getpid(), pt->index);
    rd_kafka_t *rk = new_producer(o, o->linger_ms, on_delivery, pt,
                                  o->txn_records > 0 ? txn_id : NULL);
    rd_kafka_topic_t *rkt = NULL;
    if (o->txn_records > 0) {
        while (txn_check(rd_kafka_init_transactions(rk, 60000), "init_transactions"))
            ;
        /* The topic's metadata before the clock starts: a transactional producer whose
         * connection is already up (it found its coordinator over it) otherwise learns of
         * a new topic only at its next metadata scan, up to 1 s later, with either broker. */
        rkt = rd_kafka_topic_new(rk, o->topic, NULL);
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 30000);
        if (err)
            die("metadata", rd_kafka_err2str(err));
        rd_kafka_metadata_destroy(md);
        pthread_barrier_wait(pt->ready);
    }
    char *value = malloc((size_t)o->size);
    if (!value)
        die("malloc", "value");
    for (long i = 0; i < o->size; i++)
        value[i] = (char)('a' + i % 26);
    int64_t start = now_ns();
    for (long i = 0; i < pt->records; i++) {
        if (o->txn_records > 0 && i % o->txn_records == 0) {
            if (i > 0)
                commit_txn(rk, pt);
            while (txn_check(rd_kafka_begin_transaction(rk), "begin_transaction"))
                ;
        }
        if (pt->rate > 0) {
            int64_t due = start + (int64_t)((double)i * 1e9 / pt->rate);
            int64_t wait = due - now_ns();
            if (wait > 0) {
                struct timespec ts = {wait / 1000000000, wait % 1000000000};
                nanosleep(&ts, NULL);
            }
        }
        char key[32];
        int keylen = snprintf(key, sizeof key, "key-%ld", (pt->first + i) % 100000);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_VALUE(value, (size_t)o->size),
                RD_KAFKA_V_KEY(o->keyed ? key : NULL, o->keyed ? (size_t)keylen : 0),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE((void *)(intptr_t)now_ns()), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                die("produce", rd_kafka_err2str(err));
            rd_kafka_poll(rk, 1);
        }
        /* Delivery reports run inside poll: at a fixed rate poll after every record so the
         * measured latency is not the gap between polls. */
        if (pt->rate > 0 || (i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    if (o->txn_records > 0 && pt->records > 0)
        commit_txn(rk, pt);
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_poll(rk, 50);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(value);
    return NULL;
}

static int run_produce(const struct opts *o) {
    struct latencies lat = {.capacity = o->records, .lock = PTHREAD_MUTEX_INITIALIZER};
    lat.us = malloc(sizeof(uint32_t) * (size_t)o->records);
    struct producer_thread *pts = calloc((size_t)o->producers, sizeof *pts);
    /* -T: at most one commit per TXN_RECORDS records of each producer, and its last one. */
    long commits = o->txn_records > 0 ? o->records / o->txn_records + o->producers : 0;
    struct latencies commit_lat = {.capacity = commits, .lock = PTHREAD_MUTEX_INITIALIZER};
    commit_lat.us = malloc(sizeof(uint32_t) * (size_t)(commits + 1));
    if (!lat.us || !pts || !commit_lat.us)
        die("malloc", "latencies");
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, (unsigned)o->producers + 1);
    int64_t start = now_ns();
    long first = 0;
    for (int p = 0; p < o->producers; p++) {
        pts[p].o = o;
        pts[p].records = o->records / o->producers + (p < o->records % o->producers);
        pts[p].first = first;
        first += pts[p].records;
        pts[p].rate = o->rate > 0 ? (double)o->rate / o->producers : 0;
        pts[p].lat = &lat;
        pts[p].commit_lat = &commit_lat;
        pts[p].index = p;
        pts[p].ready = &ready;
        if (pthread_create(&pts[p].thread, NULL, produce_loop, &pts[p]) != 0)
            die("pthread_create", strerror(errno));
    }
    if (o->txn_records > 0) {
        /* -T: timed from the moment every producer has its producer id and the topic. */
        pthread_barrier_wait(&ready);
        start = now_ns();
    }
    long delivered = 0, failed = 0;
    for (int p = 0; p < o->producers; p++) {
        pthread_join(pts[p].thread, NULL);
        delivered += pts[p].delivered;
        failed += pts[p].failed;
    }
    double secs = (double)(now_ns() - start) / 1e9;
    qsort(lat.us, (size_t)lat.count, sizeof(uint32_t), cmp_u32);
    printf("{\"mode\":\"produce\",\"records\":%ld,\"delivered\":%ld,\"failed\":%ld,"
           "\"seconds\":%.3f,\"msgs\":%.1f,\"mbs\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p999_ms\":%.3f",
           o->records, delivered, failed, secs, delivered / secs,
           (double)delivered * (double)o->size / secs / 1e6, percentile_ms(&lat, 0.5),
           percentile_ms(&lat, 0.99), percentile_ms(&lat, 0.999));
    if (o->txn_records > 0) {
        qsort(commit_lat.us, (size_t)commit_lat.count, sizeof(uint32_t), cmp_u32);
        printf(",\"transactions\":%ld,\"commit_p50_ms\":%.3f,\"commit_p99_ms\":%.3f,"
               "\"commit_p999_ms\":%.3f",
               commit_lat.count, percentile_ms(&commit_lat, 0.5),
               percentile_ms(&commit_lat, 0.99), percentile_ms(&commit_lat, 0.999));
    }
    printf("}\n");
    return failed == 0 && delivered == o->records ? 0 : 1;
}

/* ---- consume ---------------------------------------------------------------------------- */

static rd_kafka_t *new_consumer(const struct opts *o) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", o->bootstrap);
    set(conf, "group.id", "rdkafka-load"); /* required by the API; no group is joined */
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.partition.eof", "false");
    /* Fetch sizes stay librdkafka's (1 MB per partition, 50 MB per request): with 10 MB per
     * partition, 16-partition answers of up to 50 MB halve its read rate from either broker
     * (it parses an answer only once the whole of it has arrived). */
    set(conf, "fetch.wait.max.ms", "100");
    set(conf, "queued.max.messages.kbytes", "262144");
    /* With the default (100,000) a partition that filled its queue waits out a backoff
     * before it is fetched again: 16 partitions of 100 B records then read at 0.5 M msg/s
     * from either broker, against 1.7 M with this. */
    set(conf, "queued.min.messages", "1000000");
    set_extras(conf, o);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk)
        die("consumer", err);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void assign_all(rd_kafka_t *rk, const struct opts *o, int64_t offset) {
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(o->partitions);
    for (int p = 0; p < o->partitions; p++)
        rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err)
        die("assign", rd_kafka_err2str(err));
}

static int run_consume(const struct opts *o) {
    rd_kafka_t *rk = new_consumer(o);
    rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(rk);
    assign_all(rk, o, RD_KAFKA_OFFSET_BEGINNING);
    long got = 0, first_n = 0;
    int64_t bytes = 0, first_bytes = 0, start = now_ns(), first = 0, last = start;
    /* Messages are taken in batches: one queue lock per batch, not per message. The rate
     * is timed from the first batch on (that batch excluded), so the client's start-up
     * (metadata, offset look-up, first fetch) does not count against the broker. */
    enum { BATCH = 10000 };
    static rd_kafka_message_t *batch[BATCH];
    while (got < o->records) {
        ssize_t n = rd_kafka_consume_batch_queue(queue, 1000, batch, BATCH);
        if (n <= 0) {
            if (now_ns() - last > 20LL * 1000000000)
                break; /* stalled: report what arrived */
            continue;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (!batch[i]->err) {
                got++;
                bytes += (int64_t)batch[i]->len;
            }
            rd_kafka_message_destroy(batch[i]);
        }
        last = now_ns();
        if (first == 0) {
            first = last;
            first_n = got;
            first_bytes = bytes;
        }
    }
    rd_kafka_queue_destroy(queue);
    double secs = first ? (double)(last - first) / 1e9 : 0;
    double startup = first ? (double)(first - start) / 1e9 : 0;
    printf("{\"mode\":\"consume\",\"records\":%ld,\"bytes\":%lld,\"startup_seconds\":%.3f,"
           "\"seconds\":%.3f,\"msgs\":%.1f,\"mbs\":%.3f}\n",
           got, (long long)bytes, startup, secs, secs > 0 ? (got - first_n) / secs : 0,
           secs > 0 ? (double)(bytes - first_bytes) / secs / 1e6 : 0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return got == o->records ? 0 : 1;
}

/* ---- end-to-end ------------------------------------------------------------------------- */

struct e2e_consumer {
    const struct opts *o;
    rd_kafka_t *rk;
    struct latencies *lat;
    long got;
    volatile int ready;
    pthread_t thread;
};

static void *e2e_consume_loop(void *arg) {
    struct e2e_consumer *c = arg;
    int64_t last = now_ns();
    while (c->got < c->o->records && now_ns() - last < 20LL * 1000000000) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
        if (!m)
            continue;
        c->ready = 1;
        if (!m->err && m->len >= sizeof(int64_t)) {
            int64_t sent;
            memcpy(&sent, m->payload, sizeof sent);
            latency_add(c->lat, now_ns() - sent);
            c->got++;
            last = now_ns();
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static void on_delivery_ignore(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk, (void)opaque;
    if (m->err)
        fprintf(stderr, "rdkafka_load: delivery failed: %s\n", rd_kafka_err2str(m->err));
}

static int run_e2e(struct opts *o) {
    if (o->size < (long)sizeof(int64_t))
        o->size = sizeof(int64_t);
    struct latencies lat = {.capacity = o->records, .lock = PTHREAD_MUTEX_INITIALIZER};
    lat.us = malloc(sizeof(uint32_t) * (size_t)o->records);
    if (!lat.us)
        die("malloc", "latencies");
    struct e2e_consumer c = {.o = o, .lat = &lat};
    o->partitions = o->partitions > 0 ? o->partitions : 1;
    c.rk = new_consumer(o);
    assign_all(c.rk, o, RD_KAFKA_OFFSET_END);
    /* Wait until the consumer holds its positions, so no record is sent before it reads. */
    for (int i = 0; i < 50; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c.rk, 100);
        if (m)
            rd_kafka_message_destroy(m);
    }
    if (pthread_create(&c.thread, NULL, e2e_consume_loop, &c) != 0)
        die("pthread_create", strerror(errno));

    /* One record at a time: no linger. */
    rd_kafka_t *rk = new_producer(o, 0, on_delivery_ignore, NULL, NULL);
    char *value = calloc(1, (size_t)o->size);
    if (!value)
        die("malloc", "value");
    int64_t start = now_ns();
    for (long i = 0; i < o->records; i++) {
        int64_t due = start + (int64_t)((double)i * 1e9 / (double)o->rate);
        int64_t wait = due - now_ns();
        if (wait > 0) {
            struct timespec ts = {wait / 1000000000, wait % 1000000000};
            nanosleep(&ts, NULL);
        }
        int64_t sent = now_ns();
        memcpy(value, &sent, sizeof sent);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_VALUE(value, (size_t)o->size),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e)
            die("produce", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 30000);
    pthread_join(c.thread, NULL);
    rd_kafka_destroy(rk);
    rd_kafka_consumer_close(c.rk);
    rd_kafka_destroy(c.rk);
    qsort(lat.us, (size_t)lat.count, sizeof(uint32_t), cmp_u32);
    printf("{\"mode\":\"e2e\",\"records\":%ld,\"received\":%ld,\"rate\":%ld,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"p999_ms\":%.3f}\n",
           o->records, c.got, o->rate, percentile_ms(&lat, 0.5), percentile_ms(&lat, 0.99),
           percentile_ms(&lat, 0.999));
    return c.got == o->records ? 0 : 1;
}

static void usage(void) {
    fputs("usage: rdkafka_load produce|consume|e2e -b BOOTSTRAP -t TOPIC -n RECORDS [-s SIZE]\n"
          "       [-a ACKS] [-P PRODUCERS] [-p PARTITIONS] [-k] [-r RATE] [-l LINGER_MS]\n"
          "       [-B BATCH_BYTES] [-T TXN_RECORDS] [-X librdkafka.property=value ...]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    struct opts o = {.acks = "1", .size = 100, .producers = 1, .partitions = 1,
                     .linger_ms = 5, .batch_bytes = 65536};
    int c;
    optind = 2;
    while ((c = getopt(argc, argv, "b:t:n:s:a:P:p:kr:l:B:T:X:")) != -1) {
        switch (c) {
        case 'b': o.bootstrap = optarg; break;
        case 't': o.topic = optarg; break;
        case 'n': o.records = atol(optarg); break;
        case 's': o.size = atol(optarg); break;
        case 'a': o.acks = optarg; break;
        case 'P': o.producers = atoi(optarg); break;
        case 'p': o.partitions = atoi(optarg); break;
        case 'k': o.keyed = 1; break;
        case 'r': o.rate = atol(optarg); break;
        case 'l': o.linger_ms = atoi(optarg); break;
        case 'B': o.batch_bytes = atoi(optarg); break;
        case 'T': o.txn_records = atol(optarg); break;
        case 'X':
            if (o.extras == (int)(sizeof o.extra / sizeof o.extra[0]))
                die("-X", "too many");
            o.extra[o.extras++] = optarg;
            break;
        default: usage();
        }
    }
    if (!o.bootstrap || !o.topic || o.records <= 0 || o.size <= 0 || o.producers <= 0 ||
        o.txn_records < 0)
        usage();
    if (!strcmp(mode, "produce"))
        return run_produce(&o);
    if (!strcmp(mode, "consume"))
        return run_consume(&o);
    if (!strcmp(mode, "e2e")) {
        if (o.rate <= 0)
            usage();
        return run_e2e(&o);
    }
    usage();
}
