package main

// franz-go: kgo for producing and consuming (its own idempotent producer and group consumer),
// kadm for the admin side (CreateTopics, Metadata, ListOffsets, OffsetFetch).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type franz struct {
	brokers []string
}

// logOpt: COMPAT_FRANZ_LOG=debug|info|warn sends kgo's log to stderr.
func franzLogOpt() []kgo.Opt {
	lvl := map[string]kgo.LogLevel{"debug": kgo.LogLevelDebug, "info": kgo.LogLevelInfo,
		"warn": kgo.LogLevelWarn, "error": kgo.LogLevelError}[os.Getenv("COMPAT_FRANZ_LOG")]
	if lvl == kgo.LogLevelNone {
		return nil
	}
	return []kgo.Opt{kgo.WithLogger(kgo.BasicLogger(os.Stderr, lvl, func() string {
		return time.Now().Format("15:04:05.000 ")
	}))}
}

func (f *franz) client(extra ...kgo.Opt) (*kgo.Client, error) {
	o := append([]kgo.Opt{kgo.SeedBrokers(f.brokers...)}, franzLogOpt()...)
	return kgo.NewClient(append(o, extra...)...)
}

func (f *franz) admin() (*kadm.Client, *kgo.Client, error) {
	cl, err := f.client()
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl, nil
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func (f *franz) create(topic string, partitions int32) error {
	adm, cl, err := f.admin()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := ctxTimeout(20 * time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, topic)
	if err != nil {
		return err
	}
	r, ok := resp[topic]
	if !ok {
		return fmt.Errorf("no CreateTopics result for %s", topic)
	}
	if r.Err != nil {
		return fmt.Errorf("%v (%s)", r.Err, r.ErrMessage)
	}
	return nil
}

func (f *franz) metadata(topic string) (map[int32]int32, error) {
	adm, cl, err := f.admin()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := ctxTimeout(20 * time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	t, ok := md.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("topic %s not in the Metadata response", topic)
	}
	if t.Err != nil {
		return nil, t.Err
	}
	out := map[int32]int32{}
	for p, d := range t.Partitions {
		out[p] = d.Leader
	}
	return out, nil
}

func franzCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("unknown compression %q", name)
}

func (f *franz) produce(topic string, msgs []message, compression string, idempotent bool) ([]produceResult, error) {
	codec, err := franzCodec(compression)
	if err != nil {
		return nil, err
	}
	// franz-go is idempotent by default and compresses with snappy by default: the suite asks
	// for exactly what it tests (no codec unless one is named, idempotence only when asked).
	o := []kgo.Opt{
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(5 * time.Millisecond),
		// No RecordDeliveryTimeout: franz-go measures it from a batch's first record's
		// Timestamp, so records with explicit past timestamps (the suite's) would expire at
		// once. The Flush context below bounds the call instead.
	}
	if !idempotent {
		o = append(o, kgo.DisableIdempotentWrite())
	}
	cl, err := f.client(o...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	res := make([]produceResult, len(msgs))
	ctx, cancel := ctxTimeout(110 * time.Second)
	defer cancel()
	for i, m := range msgs {
		r := &kgo.Record{Topic: topic, Partition: m.partition, Key: m.key, Value: m.value}
		if m.ts >= 0 {
			r.Timestamp = time.UnixMilli(m.ts)
		}
		for _, h := range m.headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.key, Value: h.value})
		}
		i := i
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			res[i] = produceResult{partition: r.Partition, offset: r.Offset, err: err}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	return res, nil
}

func (f *franz) consume(topic string, partition int32, start int64, count int, deadline time.Time) error {
	cl, err := f.client(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(start)}}),
		kgo.FetchMaxWait(100*time.Millisecond),
	)
	if err != nil {
		return err
	}
	defer cl.Close()
	got := 0
	for got < count && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fs := cl.PollRecords(ctx, count-got)
		cancel()
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			return fmt.Errorf("fetch %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if got >= count {
				return
			}
			tstype := "CreateTime"
			if r.Attrs.TimestampType() == 1 {
				tstype = "LogAppendTime"
			}
			emit(record{
				Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(), TsType: tstype,
				Key: r.Key, Value: r.Value,
				Headers: headerPairs(len(r.Headers), func(i int) (string, []byte) { return r.Headers[i].Key, r.Headers[i].Value }),
			})
			got++
		})
	}
	return nil
}

func (f *franz) offsets(topic string, partition int32, ts []int64) (int64, int64, []*int64, error) {
	adm, cl, err := f.admin()
	if err != nil {
		return 0, 0, nil, err
	}
	defer cl.Close()
	ctx, cancel := ctxTimeout(20 * time.Second)
	defer cancel()
	one := func(l kadm.ListedOffsets, err error) (kadm.ListedOffset, error) {
		if err != nil {
			return kadm.ListedOffset{}, err
		}
		o, ok := l.Lookup(topic, partition)
		if !ok {
			return o, fmt.Errorf("no ListOffsets answer for %s[%d]", topic, partition)
		}
		return o, o.Err
	}
	lo, err := one(adm.ListStartOffsets(ctx, topic))
	if err != nil {
		return 0, 0, nil, fmt.Errorf("start offsets: %w", err)
	}
	hi, err := one(adm.ListEndOffsets(ctx, topic))
	if err != nil {
		return 0, 0, nil, fmt.Errorf("end offsets: %w", err)
	}
	var byTs []*int64
	for _, t := range ts {
		o, err := one(adm.ListOffsetsAfterMilli(ctx, t, topic))
		if err != nil {
			return 0, 0, nil, fmt.Errorf("offsets after %d: %w", t, err)
		}
		// When no record has a timestamp >= t, the broker answers -1 and kadm lists the end
		// offset instead, with timestamp -1: that is Java's null (no such offset).
		if o.Timestamp < 0 {
			byTs = append(byTs, nil)
		} else {
			off := o.Offset
			byTs = append(byTs, &off)
		}
	}
	return lo.Offset, hi.Offset, byTs, nil
}

func partsOf(m map[string][]int32, topic string) []int32 {
	return append([]int32{}, m[topic]...)
}

func (f *franz) group(g *groupMember) error {
	o := []kgo.Opt{
		kgo.ConsumerGroup(g.group),
		kgo.ConsumeTopics(g.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // auto.offset.reset=earliest
		kgo.FetchMaxWait(200 * time.Millisecond),
	}
	// franz-go's default balancer is cooperative-sticky; the classic scenarios use range (the
	// eager default of the other clients) unless the scenario asks for cooperative-sticky.
	// KIP-848 needs range or a sticky balancer and maps them to the broker's "range" and
	// "uniform" assignors: the default there is uniform, as Java's.
	switch {
	case g.assignor == "cooperative-sticky" || (g.protocol == "consumer" && g.assignor == ""):
		o = append(o, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	default:
		o = append(o, kgo.Balancers(kgo.RangeBalancer()))
	}
	if g.protocol == "consumer" {
		o = append(o, kgo.ServerSideBalancer())
	}
	if g.sessionMs > 0 {
		o = append(o, kgo.SessionTimeout(time.Duration(g.sessionMs)*time.Millisecond))
	}
	if g.hbMs > 0 {
		o = append(o, kgo.HeartbeatInterval(time.Duration(g.hbMs)*time.Millisecond))
	}
	if g.instance != "" {
		o = append(o, kgo.InstanceID(g.instance))
	}
	if g.auto {
		// Greedy: autocommit (and the commit on revoke / close below) covers every record
		// polled, as the Java consumer's commit of its position does; franz-go's default
		// leaves the most recent poll uncommitted until the next one.
		o = append(o, kgo.GreedyAutoCommit())
	} else {
		o = append(o, kgo.DisableAutoCommit())
	}
	o = append(o,
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			g.emitAssigned(partsOf(m, g.topic))
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			// A custom OnPartitionsRevoked replaces franz-go's default one, which is the
			// autocommit's commit before the partitions go.
			if g.auto {
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					g.emitError(fmt.Errorf("commit on revoke: %w", err))
				}
			}
			g.emitRevoked(partsOf(m, g.topic), false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			g.emitRevoked(partsOf(m, g.topic), true)
		}),
	)
	cl, err := f.client(o...)
	if err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	checked := make(chan struct{})
	if g.protocol == "consumer" {
		go func() {
			defer close(checked)
			f.check848(adm, g)
		}()
	} else {
		close(checked)
	}

	for {
		select {
		case cmd := <-g.cmds:
			switch cmd {
			case "close":
				select { // a short-lived member still gets its KIP-848 check
				case <-checked:
				case <-time.After(10 * time.Second):
				}
				cl.Close() // LeaveGroup (dynamic members), the commit on revoke in auto mode
				return nil
			case "commit":
				next, epochs := g.processedOffsets()
				offs := map[int32]kgo.EpochOffset{}
				for p, o := range next {
					offs[p] = kgo.EpochOffset{Epoch: epochs[p], Offset: o}
				}
				ctx, cancel := ctxTimeout(20 * time.Second)
				var cerr error
				cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{g.topic: offs},
					func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
						if err != nil {
							cerr = err
							return
						}
						for _, t := range resp.Topics {
							for _, p := range t.Partitions {
								if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
									cerr = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, e)
								}
							}
						}
					})
				cancel()
				if cerr != nil {
					return fmt.Errorf("commit: %w", cerr)
				}
				g.emitCommitOK(next)
			case "committed":
				// OffsetFetch for the group (kadm), as Java's committed() asks the coordinator.
				ctx, cancel := ctxTimeout(20 * time.Second)
				resp, err := adm.FetchOffsets(ctx, g.group)
				cancel()
				if err != nil {
					return fmt.Errorf("committed: %w", err)
				}
				got := map[int32]int64{}
				for p := int32(0); p < g.partitions; p++ {
					if r, ok := resp.Lookup(g.topic, p); ok {
						if r.Err != nil {
							return fmt.Errorf("committed %s[%d]: %w", g.topic, p, r.Err)
						}
						got[p] = r.At
					}
				}
				g.emitCommitted(got)
			default:
				g.emitError(fmt.Errorf("unknown command %s", cmd))
			}
			continue
		default:
		}
		room := g.room()
		if room == 0 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		n := 500
		if room > 0 && room < int64(n) {
			n = int(room)
		}
		ctx, cancel := ctxTimeout(200 * time.Millisecond)
		fs := cl.PollRecords(ctx, n)
		cancel()
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) ||
				errors.Is(fe.Err, kgo.ErrClientClosed) {
				continue
			}
			g.emitError(fmt.Errorf("poll %s[%d]: %w", fe.Topic, fe.Partition, fe.Err))
		}
		fs.EachRecord(func(r *kgo.Record) {
			g.take(r.Partition, r.Offset, r.LeaderEpoch, r.Key, r.Value)
		})
	}
}

// check848 makes sure a protocol=consumer member really runs KIP-848: franz-go silently uses
// the classic protocol when the broker lacks ConsumerGroupHeartbeat v1. Once the group exists,
// ListGroups must show it with type "consumer".
func (f *franz) check848(adm *kadm.Client, g *groupMember) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := ctxTimeout(10 * time.Second)
		groups, err := adm.ListGroups(ctx)
		cancel()
		if err == nil {
			if lg, ok := groups[g.group]; ok {
				if lg.GroupType != "consumer" {
					g.emitError(fmt.Errorf("protocol=consumer asked, but the group runs as %q (protocol type %q): franz-go fell back to the classic protocol",
						lg.GroupType, lg.ProtocolType))
				}
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	g.emitError(fmt.Errorf("group %s never listed by ListGroups", g.group))
}
