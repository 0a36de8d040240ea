// Package ratelimit limits how fast each client may make requests of one
// class (limits.anonymous_writes, limits.token_writes, limits.reads): one
// token bucket per client, kept in a fixed-size table in this process.
//
// A bucket holds N requests and refills at N per period, so a client may
// burst N requests and then keep to the rate. Its whole state is one
// number, the time at which it will be full again (the "theoretical arrival
// time" of the generic cell rate algorithm, which is a token bucket counted
// in time): a bucket whose time has passed is full, and a full bucket is the
// same as none. So idle buckets expire by themselves, and the table never
// needs sweeping.
//
// The table has a fixed number of slots (Capacity), allocated when the
// class is first turned on and never grown: a client finds its bucket among
// the 8 slots its key hashes to, and a new client takes a full slot there,
// else the one closest to full. A client rotating addresses therefore
// evicts other buckets (letting their clients start afresh: more lenient,
// never stricter), and cannot grow the process. Deciding a request takes
// one hash, one uncontended lock of 1 in 64 shards and a look at 8 slots,
// and allocates nothing.
//
// Limits are per process: with several replicas (or prefork children)
// behind a load balancer, a client may get up to that many allowances.
package ratelimit

import (
	"fmt"
	"strconv"
	"time"
)

// Rate is a limit of N requests per Per. The zero Rate is off.
type Rate struct {
	N   int64
	Per time.Duration
}

// MaxN is the largest N a Rate may have: more requests than that per
// second from one client is no limit at all.
const MaxN = 1_000_000

// ParseRate reads "N/s", "N/m" or "N/h" (N a whole number from 1 to
// MaxN, without sign or leading zeros); "0" and "" mean off.
func ParseRate(s string) (Rate, error) {
	if s == "" || s == "0" {
		return Rate{}, nil
	}
	num, unit, ok := cutLast(s)
	var per time.Duration
	switch unit {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	default:
		ok = false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || num[0] < '1' || num[0] > '9' || n > MaxN {
		return Rate{}, fmt.Errorf("invalid rate %q: want \"N/s\", \"N/m\" or \"N/h\" with N from 1 to %d (e.g. \"20/m\"), or \"0\" for off", s, MaxN)
	}
	return Rate{N: n, Per: per}, nil
}

// cutLast splits "N/u" into N and u.
func cutLast(s string) (num, unit string, ok bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}

// Off reports whether the rate limits nothing.
func (r Rate) Off() bool { return r.N <= 0 || r.Per <= 0 }

// String is the rate as configured: "20/m", or "0" when off.
func (r Rate) String() string {
	if r.Off() {
		return "0"
	}
	unit := "s"
	switch r.Per {
	case time.Minute:
		unit = "m"
	case time.Hour:
		unit = "h"
	}
	return strconv.FormatInt(r.N, 10) + "/" + unit
}

// UnmarshalText parses a rate from configuration text.
func (r *Rate) UnmarshalText(b []byte) error {
	v, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText is the rate as configuration text.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// interval is the time one request uses up; tolerance is how far ahead of
// now a bucket's time may run, the burst of N-1 requests beyond the one
// being decided.
func (r Rate) interval() int64  { return int64(r.Per) / r.N }
func (r Rate) tolerance() int64 { return (r.N - 1) * r.interval() }
