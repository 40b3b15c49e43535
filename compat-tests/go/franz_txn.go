package main

// franz-go's transactional producer (kgo.TransactionalID): one transaction per round, each
// committed or aborted. franz-go 1.22 uses transactions v2 (KIP-890 part 2) where the
// cluster finalizes transaction.version 2, the classic protocol otherwise.

import (
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txn: `txn topic= txn_id= rounds=commit,abort,... count= prefix=`; records go to
// partition 0. Prints {"round","outcome","values"} per round.
func franzTxn(brokers []string, o opts) {
	f := &franz{brokers: brokers}
	topic := o.str("topic")
	count := int(o.int("count", 1))
	prefix := o.str("prefix")
	cl, err := f.client(
		kgo.TransactionalID(o.str("txn_id")),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionTimeout(30*time.Second),
	)
	if err != nil {
		fail("client: %v", err)
	}
	defer cl.Close()
	for r, outcome := range strings.Split(o.str("rounds"), ",") {
		ctx, cancel := ctxTimeout(60 * time.Second)
		if err := cl.BeginTransaction(); err != nil {
			fail("begin round %d: %v", r, err)
		}
		var values []string
		for i := 0; i < count; i++ {
			v := fmt.Sprintf("%s-%d-%d", prefix, r, i)
			values = append(values, v)
			rec := &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}
			if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
				fail("produce round %d: %v", r, err)
			}
		}
		end := kgo.TryCommit
		if outcome == "abort" {
			end = kgo.TryAbort
		} else if outcome != "commit" {
			fail("round %q", outcome)
		}
		if err := cl.EndTransaction(ctx, end); err != nil {
			fail("end round %d (%s): %v", r, outcome, err)
		}
		cancel()
		emit(map[string]any{"round": r, "outcome": outcome, "values": values})
	}
}
