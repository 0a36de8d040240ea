package ratelimit

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Capacity is how many buckets a Table holds: the most clients of one
// class tracked at once. A slot is 24 bytes, so a table takes 1.5 MiB.
const Capacity = 1 << 16

const (
	shardCount   = 64 // independent locks
	ways         = 8  // slots a key may live in
	setsPerShard = Capacity / shardCount / ways
)

// Key identifies a client within one class: see AddrKey and BytesKey.
type Key [16]byte

// AddrKey is the key of a client address: the whole address for IPv4, the
// /64 network for IPv6, since one IPv6 host usually holds a whole /64 and
// could otherwise take a fresh bucket for every request.
func AddrKey(a netip.Addr) Key {
	a = a.Unmap()
	k := Key(a.As16())
	if a.Is6() {
		clear(k[8:])
	}
	return k
}

// BytesKey is the key of an opaque identity such as a digest: its first
// 16 bytes.
func BytesKey(b []byte) Key {
	var k Key
	copy(k[:], b)
	return k
}

// Decision is the answer for one request.
type Decision struct {
	// Allowed reports whether the request may go on.
	Allowed bool
	// Remaining is how many more requests the bucket allows now.
	Remaining int64
	// Full is the time until the bucket is full again.
	Full time.Duration
	// RetryAfter is, for a refused request, the time until one would be
	// allowed.
	RetryAfter time.Duration
	// Evicted reports that making room for this client dropped another
	// client's bucket before it was full.
	Evicted bool
}

// slot is one bucket: its key and the time (nanoseconds after the table's
// epoch) when it will be full again; a time not after now means full, so
// the slot is free.
type slot struct {
	key Key
	tat int64
}

type shard struct {
	mu    sync.Mutex
	slots []slot
	_     [32]byte // keeps neighbouring shards' locks off one cache line
}

// params are a rate's interval and tolerance, swapped together.
type params struct {
	interval, tolerance int64
}

// Table holds the buckets of one class. It is safe for concurrent use.
type Table struct {
	shards [shardCount]shard
	seed   maphash.Seed
	epoch  time.Time
	params atomic.Pointer[params]
}

// NewTable allocates a table of Capacity buckets limiting to r, which must
// not be off.
func NewTable(r Rate) *Table {
	t := &Table{seed: maphash.MakeSeed(), epoch: time.Now()}
	slots := make([]slot, Capacity)
	for i := range t.shards {
		t.shards[i].slots = slots[i*Capacity/shardCount : (i+1)*Capacity/shardCount]
	}
	t.SetRate(r)
	return t
}

// SetRate changes the limit. Buckets keep their time, so a client's debt
// carries over into the new rate.
func (t *Table) SetRate(r Rate) {
	t.params.Store(&params{interval: r.interval(), tolerance: r.tolerance()})
}

// now is the monotonic time since the table's epoch, never 0 (the time of
// an empty slot).
func (t *Table) now() int64 { return int64(time.Since(t.epoch)) + 1 }

// Allow takes one request from k's bucket, if it has one to give.
func (t *Table) Allow(k Key) Decision { return t.allowAt(k, t.now()) }

func (t *Table) allowAt(k Key, now int64) Decision {
	h := maphash.Bytes(t.seed, k[:])
	sh := &t.shards[h%shardCount]
	base := int(h/shardCount%setsPerShard) * ways
	p := t.params.Load()

	sh.mu.Lock()
	set := sh.slots[base : base+ways]
	s, oldest, evicted := -1, 0, false
	for i := range set {
		if set[i].key == k {
			s = i
			break
		}
		if set[i].tat < set[oldest].tat {
			oldest = i
		}
	}
	if s < 0 {
		// A new client takes a free slot, else the one whose bucket is
		// closest to full: the least is forgotten.
		s = oldest
		evicted = set[s].tat > now
		set[s] = slot{key: k, tat: now}
	}
	b := &set[s]
	tat := max(b.tat, now)
	d := Decision{Evicted: evicted}
	if debt := tat - now; debt > p.tolerance {
		d.RetryAfter = time.Duration(debt - p.tolerance)
		d.Full = time.Duration(debt)
	} else {
		b.tat = tat + p.interval
		d.Allowed = true
		d.Full = time.Duration(b.tat - now)
		d.Remaining = (p.tolerance + p.interval - (b.tat - now)) / p.interval
	}
	sh.mu.Unlock()
	return d
}

// Live counts the buckets that are not full: the clients the table must
// remember now. It takes every shard's lock in turn; it is for metrics.
func (t *Table) Live() int {
	now := t.now()
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, s := range sh.slots {
			if s.tat > now {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}
