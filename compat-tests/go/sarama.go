package main

// sarama (github.com/IBM/sarama): ClusterAdmin for CreateTopics / Metadata / OffsetFetch, the
// client's GetOffset for ListOffsets, AsyncProducer, Consumer.ConsumePartition and the
// ConsumerGroup with its Setup / ConsumeClaim / Cleanup handler.

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

type saramaLib struct {
	brokers []string
}

func newSarama(brokers []string) *saramaLib {
	if os.Getenv("COMPAT_SARAMA_LOG") != "" { // sarama's log on stderr
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Ltime|log.Lmicroseconds)
	}
	return &saramaLib{brokers: brokers}
}

// config: sarama picks request versions from Config.Version (then caps them at what the
// broker's ApiVersions offers); gregor follows Kafka 4.0. Version >= 0.11 is what the
// idempotent producer needs, >= 2.3 static membership, >= 2.4 cooperative rebalancing.
func (s *saramaLib) config() *sarama.Config {
	c := sarama.NewConfig()
	c.Version = sarama.V4_0_0_0
	c.ClientID = "compat-sarama"
	c.Admin.Timeout = 20 * time.Second
	c.Net.ReadTimeout = 30 * time.Second
	return c
}

func (s *saramaLib) admin() (sarama.ClusterAdmin, error) {
	return sarama.NewClusterAdmin(s.brokers, s.config())
}

func (s *saramaLib) create(topic string, partitions int32) error {
	adm, err := s.admin()
	if err != nil {
		return err
	}
	defer adm.Close()
	return adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
}

func (s *saramaLib) metadata(topic string) (map[int32]int32, error) {
	adm, err := s.admin()
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	md, err := adm.DescribeTopics([]string{topic})
	if err != nil {
		return nil, err
	}
	if len(md) != 1 || md[0].Name != topic {
		return nil, fmt.Errorf("DescribeTopics returned %d topics", len(md))
	}
	if md[0].Err != sarama.ErrNoError {
		return nil, md[0].Err
	}
	out := map[int32]int32{}
	for _, p := range md[0].Partitions {
		out[p.ID] = p.Leader
	}
	return out, nil
}

func saramaCodec(name string) (sarama.CompressionCodec, error) {
	switch name {
	case "", "none":
		return sarama.CompressionNone, nil
	case "gzip":
		return sarama.CompressionGZIP, nil
	case "snappy":
		return sarama.CompressionSnappy, nil
	case "lz4":
		return sarama.CompressionLZ4, nil
	case "zstd":
		return sarama.CompressionZSTD, nil
	}
	return sarama.CompressionNone, fmt.Errorf("unknown compression %q", name)
}

func (s *saramaLib) produce(topic string, msgs []message, compression string, idempotent bool) ([]produceResult, error) {
	c := s.config()
	codec, err := saramaCodec(compression)
	if err != nil {
		return nil, err
	}
	c.Producer.Compression = codec
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Partitioner = sarama.NewManualPartitioner
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.Producer.Timeout = 30 * time.Second
	if idempotent {
		// sarama's idempotent producer: acks=all and one request in flight per broker.
		c.Producer.Idempotent = true
		c.Net.MaxOpenRequests = 1
	}
	p, err := sarama.NewAsyncProducer(s.brokers, c)
	if err != nil {
		return nil, err
	}
	go func() {
		for i, m := range msgs {
			pm := &sarama.ProducerMessage{Topic: topic, Partition: m.partition, Metadata: i}
			if m.key != nil {
				pm.Key = sarama.ByteEncoder(m.key)
			}
			if m.value != nil {
				pm.Value = sarama.ByteEncoder(m.value)
			}
			if m.ts >= 0 {
				pm.Timestamp = time.UnixMilli(m.ts)
			}
			for _, h := range m.headers {
				pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(h.key), Value: h.value})
			}
			p.Input() <- pm
		}
	}()
	res := make([]produceResult, len(msgs))
	timeout := time.After(110 * time.Second)
	for n := 0; n < len(msgs); n++ {
		select {
		case m := <-p.Successes():
			res[m.Metadata.(int)] = produceResult{partition: m.Partition, offset: m.Offset}
		case e := <-p.Errors():
			res[e.Msg.Metadata.(int)] = produceResult{err: e.Err}
		case <-timeout:
			p.AsyncClose()
			return nil, fmt.Errorf("%d of %d messages unacknowledged after 110s", len(msgs)-n, len(msgs))
		}
	}
	if err := p.Close(); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	return res, nil
}

func (s *saramaLib) consume(topic string, partition int32, start int64, count int, deadline time.Time) error {
	c := s.config()
	c.Consumer.Return.Errors = true
	c.Consumer.MaxWaitTime = 100 * time.Millisecond
	cons, err := sarama.NewConsumer(s.brokers, c)
	if err != nil {
		return err
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, partition, start)
	if err != nil {
		return err
	}
	defer pc.Close()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for got := 0; got < count; got++ {
		select {
		case m := <-pc.Messages():
			emit(record{
				Partition: m.Partition, Offset: m.Offset, Timestamp: m.Timestamp.UnixMilli(),
				Key: m.Key, Value: m.Value,
				Headers: headerPairs(len(m.Headers), func(i int) (string, []byte) {
					return string(m.Headers[i].Key), m.Headers[i].Value
				}),
			})
		case e := <-pc.Errors():
			return e
		case <-timer.C:
			return nil
		}
	}
	return nil
}

func (s *saramaLib) offsets(topic string, partition int32, ts []int64) (int64, int64, []*int64, error) {
	cl, err := sarama.NewClient(s.brokers, s.config())
	if err != nil {
		return 0, 0, nil, err
	}
	defer cl.Close()
	lo, err := cl.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("oldest: %w", err)
	}
	hi, err := cl.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("newest: %w", err)
	}
	var byTs []*int64
	for _, t := range ts {
		o, err := cl.GetOffset(topic, partition, t)
		if err != nil {
			return 0, 0, nil, fmt.Errorf("offset for time %d: %w", t, err)
		}
		if o < 0 { // the broker's -1: no record with a timestamp >= t
			byTs = append(byTs, nil)
		} else {
			byTs = append(byTs, &o)
		}
	}
	return lo, hi, byTs, nil
}

// ---------------------------------------------------------------------------- group

// saramaHandler turns sarama's session callbacks into the suite's assigned / revoked events.
// Eager (range): each session's Setup is "assigned" (all its claims) and its Cleanup
// "revoked" (all). Cooperative: Setup and Cleanup run once per membership, claims come and go
// within the session: a new claim's ConsumeClaim reports the partitions added to the session
// ("assigned", once for all of them), a ConsumeClaim whose Messages channel closes while the
// session lives reports its partition revoked.
type saramaHandler struct {
	g    *groupMember
	coop bool

	mu   sync.Mutex
	held map[int32]bool
	sess sarama.ConsumerGroupSession
}

func (h *saramaHandler) session() sarama.ConsumerGroupSession {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sess
}

// reportAdded emits "assigned" for the session's claims not reported yet.
func (h *saramaHandler) reportAdded(sess sarama.ConsumerGroupSession) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var added []int32
	for _, p := range sess.Claims()[h.g.topic] {
		if !h.held[p] {
			h.held[p] = true
			added = append(added, p)
		}
	}
	if len(added) > 0 {
		h.g.emitAssigned(added)
	}
}

func (h *saramaHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.sess = sess
	h.mu.Unlock()
	h.reportAdded(sess)
	return nil
}

func (h *saramaHandler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var gone []int32
	for p := range h.held {
		gone = append(gone, p)
	}
	h.held = map[int32]bool{}
	if len(gone) > 0 {
		h.g.emitRevoked(gone, false)
	}
	return nil
}

func (h *saramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	h.reportAdded(sess)
	ctx := sess.Context()
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				h.claimEnded(sess, claim.Partition())
				return nil
			}
			if h.g.take(m.Partition, m.Offset, -1, m.Key, m.Value) && h.g.auto {
				sess.MarkMessage(m, "") // what the auto-commit commits
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (h *saramaHandler) claimEnded(sess sarama.ConsumerGroupSession, p int32) {
	if !h.coop || sess.Context().Err() != nil {
		return // eager, or the session ends: Cleanup reports
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held[p] {
		delete(h.held, p)
		h.g.emitRevoked([]int32{p}, false)
	}
}

func (s *saramaLib) group(g *groupMember) error {
	if g.protocol == "consumer" {
		return errors.New("sarama has no KIP-848 consumer (group.protocol=consumer)")
	}
	c := s.config()
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.Initial = sarama.OffsetOldest // auto.offset.reset=earliest
	c.Consumer.Offsets.AutoCommit.Enable = g.auto
	c.Consumer.MaxWaitTime = 200 * time.Millisecond
	if g.sessionMs > 0 {
		c.Consumer.Group.Session.Timeout = time.Duration(g.sessionMs) * time.Millisecond
	}
	if g.hbMs > 0 {
		c.Consumer.Group.Heartbeat.Interval = time.Duration(g.hbMs) * time.Millisecond
	}
	if g.instance != "" {
		c.Consumer.Group.InstanceId = g.instance
	}
	h := &saramaHandler{g: g, held: map[int32]bool{}}
	if g.assignor == "cooperative-sticky" {
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
		h.coop = true
	} // else sarama's default: range, eager
	client, err := sarama.NewClient(s.brokers, c)
	if err != nil {
		return err
	}
	cg, err := sarama.NewConsumerGroupFromClient(g.group, client)
	if err != nil {
		return err
	}
	adm, err := sarama.NewClusterAdminFromClient(client) // never closed: that would close the client
	if err != nil {
		return err
	}

	fatal := make(chan error, 2)
	go func() {
		for err := range cg.Errors() {
			g.emitError(err)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consumeDone := make(chan struct{})
	go func() {
		defer close(consumeDone)
		for ctx.Err() == nil {
			// Eager: one Consume call per generation; cooperative: one per membership.
			if err := cg.Consume(ctx, []string{g.topic}, h); err != nil {
				if errors.Is(err, sarama.ErrClosedConsumerGroup) {
					return
				}
				fatal <- fmt.Errorf("consume: %w", err)
				return
			}
		}
	}()

	for {
		select {
		case err := <-fatal:
			return err
		case cmd := <-g.cmds:
			switch cmd {
			case "close":
				// Close: the session's release (Cleanup, the last auto-commit), then LeaveGroup
				// (dynamic members; a static member just forgets its member id).
				err := cg.Close()
				cancel()
				<-consumeDone
				client.Close()
				if err != nil {
					return fmt.Errorf("close: %w", err)
				}
				return nil
			case "commit":
				next, _ := g.processedOffsets()
				sess := h.session()
				if sess == nil {
					return errors.New("commit: no session yet")
				}
				for p, o := range next {
					sess.MarkOffset(g.topic, p, o, "")
				}
				sess.Commit() // synchronous; a failure arrives on Errors()
				g.emitCommitOK(next)
			case "committed":
				ps := make([]int32, g.partitions)
				for i := range ps {
					ps[i] = int32(i)
				}
				resp, err := adm.ListConsumerGroupOffsets(g.group, map[string][]int32{g.topic: ps})
				if err != nil {
					return fmt.Errorf("committed: %w", err)
				}
				if resp.Err != sarama.ErrNoError {
					return fmt.Errorf("committed: %w", resp.Err)
				}
				got := map[int32]int64{}
				for _, p := range ps {
					if b := resp.GetBlock(g.topic, p); b != nil {
						if b.Err != sarama.ErrNoError {
							return fmt.Errorf("committed %s[%d]: %w", g.topic, p, b.Err)
						}
						got[p] = b.Offset
					}
				}
				g.emitCommitted(got)
			default:
				g.emitError(fmt.Errorf("unknown command %s", cmd))
			}
		}
	}
}
