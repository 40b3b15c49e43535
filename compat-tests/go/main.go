// compat-go: the Go adapters of gregor's compat suite, franz-go (kgo + kadm) and sarama, in one
// binary. The Python driver (compat-tests/compat/clients/goclients.py) runs it as
//
//	compat-go <franz-go|sarama> <bootstrap> <command> key=value...
//
// and reads one JSON object per line from stdout. The commands and their output are exactly
// those of compat-tests/java/CompatClient.java:
//
//	create     topic= partitions=          create the topic (admin API), prints {"created":true}
//	metadata   topic=                      one {"partition","leader"} per partition
//	produce    topic= [compression=] [idempotent=0|1]
//	                                       messages on stdin, one per line (format below); prints
//	                                       {"i","partition","offset"} (or {"i","error"}) per message,
//	                                       in input order; acks=all
//	consume    topic= partition= start= count= [timeout_ms=]
//	                                       assign + seek, prints one record object per line
//	offsets    topic= partition= [ts=t1,t2,...]
//	                                       {"earliest","latest","by_ts":[offset or null per ts]}
//	group      group= topic= partitions= [auto_commit=0|1] [max_records=N] [session_ms=]
//	           [heartbeat_ms=] [instance_id=] [assignor=cooperative-sticky] [protocol=consumer]
//	                                       one subscribed group member; the JSON-lines/stdin
//	                                       protocol of compat/group_worker.py
//	txn        topic= txn_id= rounds=commit,abort,... count= prefix=
//	                                       franz-go only: one transaction per round to
//	                                       partition 0, {"round","outcome","values"} each
//
// Stdin message line: partition TAB timestamp|- TAB key|- TAB value|- TAB headers, where
// key/value are base64 ("-" = null) and headers is a comma-separated list of
// base64(name):base64(value), or base64(name) alone for a null value (empty = no headers).
// A failure prints {"error":...} and exits 1.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ---------------------------------------------------------------------------- output

var (
	outMu     sync.Mutex
	out       = bufio.NewWriterSize(os.Stdout, 1<<16)
	autoFlush bool // group members: every line goes out at once
)

func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": "marshal: " + err.Error()})
	}
	outMu.Lock()
	defer outMu.Unlock()
	out.Write(b)
	out.WriteByte('\n')
	if autoFlush {
		out.Flush()
	}
}

func flush() {
	outMu.Lock()
	defer outMu.Unlock()
	out.Flush()
}

func fail(format string, args ...any) {
	emit(map[string]string{"error": fmt.Sprintf(format, args...)})
	flush()
	os.Exit(1)
}

// ---------------------------------------------------------------------------- options

type opts map[string]string

func (o opts) str(k string) string {
	v, ok := o[k]
	if !ok {
		fail("missing option %s=", k)
	}
	return v
}

func (o opts) int(k string, def int64) int64 {
	v, ok := o[k]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		fail("option %s=%q: %v", k, v, err)
	}
	return n
}

func (o opts) has(k string) bool {
	_, ok := o[k]
	return ok
}

// ---------------------------------------------------------------------------- messages

type header struct {
	key   string
	value []byte // nil = null
}

type message struct {
	partition int32
	ts        int64 // -1 = none (the client sets it)
	key       []byte
	value     []byte
	headers   []header
}

func unb64(s string) []byte {
	if s == "-" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		fail("bad base64 %q: %v", s, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b
}

func readMessages(r io.Reader) []message {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var msgs []message
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			fail("bad message line (%d fields)", len(f))
		}
		p, err := strconv.ParseInt(f[0], 10, 32)
		if err != nil {
			fail("bad partition %q", f[0])
		}
		m := message{partition: int32(p), ts: -1, key: unb64(f[2]), value: unb64(f[3])}
		if f[1] != "-" {
			if m.ts, err = strconv.ParseInt(f[1], 10, 64); err != nil {
				fail("bad timestamp %q", f[1])
			}
		}
		if f[4] != "" {
			for _, h := range strings.Split(f[4], ",") {
				name, val, hasVal := strings.Cut(h, ":")
				hd := header{key: string(unb64(name))}
				if hasVal {
					hd.value = unb64(val)
				}
				m.headers = append(m.headers, hd)
			}
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		fail("reading stdin: %v", err)
	}
	return msgs
}

// produceResult is one message's delivery report.
type produceResult struct {
	partition int32
	offset    int64
	err       error
}

// record is one consumed record as printed by `consume`.
type record struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Timestamp int64    `json:"timestamp"`
	TsType    string   `json:"tstype,omitempty"`
	Key       []byte   `json:"key"`
	Value     []byte   `json:"value"`
	Headers   [][2]any `json:"headers"`
}

func headerPairs(n int, at func(i int) (string, []byte)) [][2]any {
	hs := make([][2]any, 0, n)
	for i := 0; i < n; i++ {
		k, v := at(i)
		if v == nil {
			hs = append(hs, [2]any{k, nil})
		} else {
			hs = append(hs, [2]any{k, v})
		}
	}
	return hs
}

// ---------------------------------------------------------------------------- the two libraries

type lib interface {
	create(topic string, partitions int32) error
	metadata(topic string) (map[int32]int32, error)
	produce(topic string, msgs []message, compression string, idempotent bool) ([]produceResult, error)
	// consume prints each record with emit and returns after count records or the deadline.
	consume(topic string, partition int32, start int64, count int, deadline time.Time) error
	// offsets returns earliest, latest and, per timestamp, the first offset whose timestamp is
	// >= it (nil when there is none).
	offsets(topic string, partition int32, ts []int64) (int64, int64, []*int64, error)
	group(g *groupMember) error
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: compat-go <franz-go|sarama> <bootstrap> <command> key=value...")
		os.Exit(2)
	}
	libName, bootstrap, cmd := os.Args[1], os.Args[2], os.Args[3]
	o := opts{}
	for _, a := range os.Args[4:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			fail("argument %q is not key=value", a)
		}
		o[k] = v
	}
	brokers := strings.Split(bootstrap, ",")
	if libName == "franz-go" && cmd == "txn" {
		franzTxn(brokers, o)
		flush()
		return
	}
	var l lib
	switch libName {
	case "franz-go":
		l = &franz{brokers: brokers}
	case "sarama":
		l = newSarama(brokers)
	default:
		fmt.Fprintln(os.Stderr, "unknown library "+libName)
		os.Exit(2)
	}

	switch cmd {
	case "create":
		if err := l.create(o.str("topic"), int32(o.int("partitions", 1))); err != nil {
			fail("create: %v", err)
		}
		emit(map[string]bool{"created": true})
	case "metadata":
		md, err := l.metadata(o.str("topic"))
		if err != nil {
			fail("metadata: %v", err)
		}
		ps := make([]int32, 0, len(md))
		for p := range md {
			ps = append(ps, p)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for _, p := range ps {
			emit(map[string]int32{"partition": p, "leader": md[p]})
		}
	case "produce":
		msgs := readMessages(os.Stdin)
		res, err := l.produce(o.str("topic"), msgs, o["compression"], o.int("idempotent", 0) == 1)
		if err != nil {
			fail("produce: %v", err)
		}
		failed := false
		for i, r := range res {
			if r.err != nil {
				failed = true
				emit(map[string]any{"i": i, "error": r.err.Error()})
			} else {
				emit(map[string]any{"i": i, "partition": r.partition, "offset": r.offset})
			}
		}
		if failed {
			flush()
			os.Exit(1)
		}
	case "consume":
		deadline := time.Now().Add(time.Duration(o.int("timeout_ms", 60000)) * time.Millisecond)
		err := l.consume(o.str("topic"), int32(o.int("partition", 0)), o.int("start", 0), int(o.int("count", 0)), deadline)
		if err != nil {
			fail("consume: %v", err)
		}
	case "offsets":
		var ts []int64
		if o["ts"] != "" {
			for _, s := range strings.Split(o["ts"], ",") {
				t, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					fail("bad ts %q", s)
				}
				ts = append(ts, t)
			}
		}
		lo, hi, byTs, err := l.offsets(o.str("topic"), int32(o.int("partition", 0)), ts)
		if err != nil {
			fail("offsets: %v", err)
		}
		if byTs == nil {
			byTs = []*int64{}
		}
		emit(map[string]any{"earliest": lo, "latest": hi, "by_ts": byTs})
	case "group":
		autoFlush = true
		g := newGroupMember(o)
		if err := l.group(g); err != nil {
			g.emitError(err)
			flush()
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown command "+cmd)
		os.Exit(2)
	}
	flush()
}
