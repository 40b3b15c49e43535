package main

// The `group` command's side shared by both libraries: options, the stdin command reader,
// the processed-record bookkeeping and the JSON events of compat/group_worker.py:
//
//	{"ev":"assigned","parts":[..]} {"ev":"revoked","parts":[..]}   rebalance callbacks
//	{"ev":"rec","p":..,"o":..,"k":b64|null,"v":b64|null}               each processed record
//	{"ev":"commit_ok","offsets":{p:o}} {"ev":"committed","offsets":{p:o|null}}
//	{"ev":"error","msg":..}
//	stdin: commit | committed | close

import (
	"bufio"
	"os"
	"sort"
	"strings"
	"sync"
)

type groupMember struct {
	group      string
	topic      string
	partitions int32
	auto       bool   // enable.auto.commit (default 1, as the clients default)
	max        int64  // 0 = unlimited
	sessionMs  int64  // 0 = the library's default
	hbMs       int64  // 0 = the library's default
	instance   string // group.instance.id, "" = dynamic member
	assignor   string // "" = the library's classic default (range), or "cooperative-sticky"
	protocol   string // "" = classic, "consumer" = KIP-848

	cmds chan string

	mu        sync.Mutex
	processed int64
	next      map[int32]int64 // partition -> last processed offset + 1
	epochs    map[int32]int32 // partition -> leader epoch of the last processed record
}

func newGroupMember(o opts) *groupMember {
	g := &groupMember{
		group:      o.str("group"),
		topic:      o.str("topic"),
		partitions: int32(o.int("partitions", 1)),
		auto:       o.int("auto_commit", 1) == 1,
		max:        o.int("max_records", 0),
		sessionMs:  o.int("session_ms", 0),
		hbMs:       o.int("heartbeat_ms", 0),
		instance:   o["instance_id"],
		assignor:   o["assignor"],
		protocol:   o["protocol"],
		cmds:       make(chan string, 16),
		next:       map[int32]int64{},
		epochs:     map[int32]int32{},
	}
	if g.assignor != "" && g.assignor != "cooperative-sticky" && g.assignor != "range" {
		fail("unknown assignor %q", g.assignor)
	}
	if g.protocol != "" && g.protocol != "consumer" && g.protocol != "classic" {
		fail("unknown group protocol %q", g.protocol)
	}
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				g.cmds <- line
			}
		}
		g.cmds <- "close" // stdin closed: the driver went away
	}()
	return g
}

// room is how many more records may be processed (-1 = no limit).
func (g *groupMember) room() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.max == 0 {
		return -1
	}
	return g.max - g.processed
}

// take processes one record unless max_records is reached; it reports whether it did.
func (g *groupMember) take(p int32, o int64, epoch int32, k, v []byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.max > 0 && g.processed >= g.max {
		return false
	}
	emit(map[string]any{"ev": "rec", "p": p, "o": o, "k": k, "v": v})
	g.processed++
	g.next[p] = o + 1
	g.epochs[p] = epoch
	return true
}

// processedOffsets is a copy of partition -> last processed offset + 1 (and leader epochs).
func (g *groupMember) processedOffsets() (map[int32]int64, map[int32]int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	next := make(map[int32]int64, len(g.next))
	ep := make(map[int32]int32, len(g.epochs))
	for p, o := range g.next {
		next[p] = o
		ep[p] = g.epochs[p]
	}
	return next, ep
}

func sortedParts(ps []int32) []int32 {
	out := append([]int32{}, ps...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (g *groupMember) emitAssigned(ps []int32) {
	emit(map[string]any{"ev": "assigned", "parts": sortedParts(ps)})
}

func (g *groupMember) emitRevoked(ps []int32, lost bool) {
	ev := map[string]any{"ev": "revoked", "parts": sortedParts(ps)}
	if lost {
		ev["lost"] = true
	}
	emit(ev)
}

func (g *groupMember) emitError(err error) {
	emit(map[string]any{"ev": "error", "msg": err.Error()})
}

func (g *groupMember) emitCommitOK(next map[int32]int64) {
	emit(map[string]any{"ev": "commit_ok", "offsets": next})
}

// emitCommitted prints the committed offsets of every partition (null = none).
func (g *groupMember) emitCommitted(got map[int32]int64) {
	offs := map[int32]*int64{}
	for p := int32(0); p < g.partitions; p++ {
		if o, ok := got[p]; ok && o >= 0 {
			o := o
			offs[p] = &o
		} else {
			offs[p] = nil
		}
	}
	emit(map[string]any{"ev": "committed", "offsets": offs})
}
