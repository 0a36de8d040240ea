// Package webhook delivers change events from the store's outbox to the
// receivers in webhooks.urls: signed POSTs, at least once, in order per
// receiver, with backoff while a receiver fails, and bounded so that a
// slow or dead receiver costs API requests nothing.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/config"
	"github.com/hotpath/hotpath/internal/store"
	"github.com/hotpath/hotpath/internal/tracing"
	"github.com/hotpath/hotpath/internal/upstream"
)

// Outbox is what the dispatcher needs of the store; *store.DB provides it.
type Outbox interface {
	ClaimEvent(ctx context.Context, url, owner string, lease time.Duration) (store.OutboxEvent, bool, error)
	EventDelivered(ctx context.Context, seq int64, owner string) error
	EventFailed(ctx context.Context, seq int64, owner string, retryIn time.Duration, giveUp bool, reason string) error
	EventPostponed(ctx context.Context, seq int64, owner string, retryIn time.Duration) error
	PruneEvents(ctx context.Context, before time.Time) (int64, error)
	EventBacklog(ctx context.Context) (int64, error)
	OutboxSignal() <-chan struct{}
	SetOutboxURLs(urls []string)
}

// Timing of the dispatcher's own loops; tests shorten them.
type timing struct {
	poll      time.Duration // look for events written by other replicas, or due for retry
	retryBase time.Duration // backoff after the first failure of an event
	retryMax  time.Duration // backoff cap
	backlog   time.Duration // refresh of webhook_outbox_backlog
	prune     time.Duration // deletion of old events
}

var defaultTiming = timing{
	poll:      250 * time.Millisecond,
	retryBase: 250 * time.Millisecond,
	retryMax:  time.Minute,
	backlog:   time.Second,
	prune:     time.Minute,
}

// Dispatcher delivers outbox events. Start it after the store is open and
// Stop it before the store is closed. Reconfigure changes its receivers and
// secret while it runs.
type Dispatcher struct {
	out    Outbox
	cfg    config.Webhooks // the keys that need a restart; URLs and Secret as at start
	secret atomic.Pointer[[]byte]
	owner  string // this process, as lease owner
	lease  time.Duration
	sem    chan struct{}   // webhooks.concurrency deliveries at most
	tracer *tracing.Tracer // continues each event's trace; nil: none
	set    *vm.Set
	log    *slog.Logger
	timing timing

	// targets is the receiver list the loops read; Reconfigure swaps it
	// whole under mu, which also guards clients and ctx.
	targets atomic.Pointer[[]*target]
	mu      sync.Mutex
	// clients are kept by URL, also for a URL no longer listed, so one that
	// comes back finds its breaker and metric series as it left them.
	clients map[string]*upstream.Client
	ctx     context.Context // of the running loops; nil before Start

	// housekeeping is set once the dispatcher has had a URL: from then
	// on it counts the backlog and prunes, also after every URL is removed
	// (their pending events are pruned after webhooks.retention).
	housekeeping atomic.Bool

	backlog                        atomic.Int64
	delivered, failed, gaveUp, dbe *vm.Counter

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// target is one receiver URL with its own client and circuit breaker.
type target struct {
	url    string
	client *upstream.Client
	wake   chan struct{}
	// broken is set while the outbox cannot be read, so an outage is
	// logged once rather than at every poll.
	broken bool
	// cancel ends the target's loop when its URL is removed.
	cancel context.CancelFunc
}

// New returns a dispatcher for cfg's URLs (possibly none yet) reading from out, with its
// metrics in set. Each delivery continues the trace of the request that
// made its event, through tracer (which may be nil: no tracing).
func New(cfg config.Webhooks, out Outbox, tracer *tracing.Tracer, set *vm.Set, log *slog.Logger) (*Dispatcher, error) {
	owner, err := newOwner()
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{
		out:    out,
		cfg:    cfg,
		owner:  owner,
		tracer: tracer,
		// A lease outlives the attempt it covers (one retry inside the
		// client included), so another replica does not deliver the event
		// again while this one is still waiting for the answer.
		lease:     2*cfg.Timeout + 5*time.Second,
		sem:       make(chan struct{}, cfg.Concurrency),
		set:       set,
		log:       log,
		timing:    defaultTiming,
		clients:   map[string]*upstream.Client{},
		delivered: set.GetOrCreateCounter(`webhook_deliveries_total{result="delivered"}`),
		failed:    set.GetOrCreateCounter(`webhook_deliveries_total{result="failed"}`),
		gaveUp:    set.GetOrCreateCounter("webhook_events_given_up_total"),
		dbe:       set.GetOrCreateCounter("webhook_outbox_errors_total"),
	}
	set.GetOrCreateGauge("webhook_outbox_backlog", func() float64 { return float64(d.backlog.Load()) })
	commit, err := d.Reconfigure(cfg.URLs, cfg.Secret)
	if err != nil {
		return nil, err
	}
	commit()
	return d, nil
}

// Reconfigure prepares new receiver URLs and a new signing secret
// (webhooks.urls and webhooks.secret, reloaded) without changing what runs;
// the commit it returns applies them. From the commit on, changes record
// events for the new URLs only, a new URL gets its own delivery loop, a
// removed URL's loop stops (an attempt under way is cancelled and its event
// goes back to the outbox), and every delivery is signed with the new
// secret. A removed URL's pending events stay in the outbox: delivered if
// the URL comes back, pruned after webhooks.retention otherwise.
func (d *Dispatcher) Reconfigure(urls []string, secret string) (commit func(), err error) {
	d.mu.Lock()
	added := map[string]*upstream.Client{}
	for _, raw := range urls {
		if d.clients[raw] != nil || added[raw] != nil {
			continue
		}
		c, err := upstream.New(upstreamName(raw), config.Upstream{
			URL:             raw,
			Timeout:         d.cfg.Timeout,
			MaxConns:        d.cfg.Concurrency,
			Retries:         1, // one quick retry for a dropped connection; the outbox retries the rest
			BreakerFailures: 5,
			BreakerCooldown: 5 * time.Second,
		}, d.set)
		if err != nil {
			d.mu.Unlock()
			return nil, fmt.Errorf("webhooks.urls: %w", err)
		}
		added[raw] = c
	}
	d.mu.Unlock()
	urls = append([]string{}, urls...)
	key := []byte(secret)
	return func() { d.apply(urls, key, added) }, nil
}

// apply is Reconfigure's commit.
func (d *Dispatcher) apply(urls []string, secret []byte, added map[string]*upstream.Client) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for raw, c := range added {
		d.clients[raw] = c
	}
	old := map[string]*target{}
	if prev := d.targets.Load(); prev != nil {
		for _, t := range *prev {
			old[t.url] = t
		}
	}
	next := make([]*target, 0, len(urls))
	for _, raw := range urls {
		t, kept := old[raw]
		if !kept {
			t = &target{url: raw, client: d.clients[raw], wake: make(chan struct{}, 1)}
			d.startLocked(t)
		}
		delete(old, raw)
		next = append(next, t)
	}
	for _, t := range old { // removed
		if t.cancel != nil {
			t.cancel()
		}
		t.client.CloseIdleConnections()
	}
	d.secret.Store(&secret)
	d.out.SetOutboxURLs(urls)
	d.targets.Store(&next)
	if len(urls) > 0 {
		d.housekeeping.Store(true)
	}
}

// startLocked starts t's delivery loop if the dispatcher runs; Start
// starts it otherwise.
func (d *Dispatcher) startLocked(t *target) {
	if d.ctx == nil {
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	t.cancel = cancel
	d.wg.Add(1)
	go d.run(ctx, t)
}

// Start launches one delivery loop per URL plus the housekeeping loop;
// Stop ends them.
func (d *Dispatcher) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	d.ctx, d.stop = ctx, cancel
	d.wg.Add(2)
	go d.fanOut(ctx)
	go d.housekeep(ctx)
	for _, t := range *d.targets.Load() {
		d.startLocked(t)
	}
}

// Stop ends the loops and waits for them, at most for one delivery
// attempt (webhooks.timeout). Undelivered events stay in the outbox for the
// next start.
func (d *Dispatcher) Stop() {
	d.stop()
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.clients {
		c.CloseIdleConnections()
	}
}

// fanOut passes the store's "events committed" signal to every URL loop.
func (d *Dispatcher) fanOut(ctx context.Context) {
	defer d.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.out.OutboxSignal():
			for _, t := range *d.targets.Load() {
				select {
				case t.wake <- struct{}{}:
				default: // already awake
				}
			}
		}
	}
}

// run delivers t's events one at a time, head first, until ctx ends.
func (d *Dispatcher) run(ctx context.Context, t *target) {
	defer d.wg.Done()
	idle := time.NewTimer(0)
	defer idle.Stop()
	for ctx.Err() == nil {
		if d.step(ctx, t) {
			continue // there may be more
		}
		idle.Reset(d.timing.poll)
		select {
		case <-ctx.Done():
		case <-t.wake:
		case <-idle.C:
		}
	}
}

// step claims and delivers at most one event for t; it reports whether
// it delivered one.
func (d *Dispatcher) step(ctx context.Context, t *target) bool {
	select {
	case d.sem <- struct{}{}:
		defer func() { <-d.sem }()
	case <-ctx.Done():
		return false
	}
	ev, ok, err := d.out.ClaimEvent(ctx, t.url, d.owner, d.lease)
	if err != nil {
		if ctx.Err() == nil {
			d.dbe.Inc()
			if !t.broken {
				d.log.Warn("webhook outbox unreadable; retrying", "url", t.client.Name(), "err", err)
			}
			t.broken = true
		}
		return false
	}
	if t.broken {
		t.broken = false
		d.log.Info("webhook outbox readable again", "url", t.client.Name())
	}
	if !ok {
		return false
	}
	// Marking must happen even while stopping: a delivered event left
	// unmarked would be delivered again after the restart.
	mctx := context.WithoutCancel(ctx)
	derr := d.deliver(ctx, t, ev)
	if derr == nil {
		d.delivered.Inc()
		if err := d.out.EventDelivered(mctx, ev.Seq, d.owner); err != nil {
			d.dbe.Inc()
			d.log.Warn("webhook outbox: mark delivered; the event will be delivered again", "url", t.client.Name(), "event_id", ev.ID, "err", err)
		}
		return true
	}
	if errors.Is(derr, upstream.ErrBreakerOpen) || errors.Is(derr, context.Canceled) {
		// Nothing reached the receiver, so webhooks.max_attempts is not
		// spent: the lease goes back, at once when stopping (another
		// instance may take the event), after a backoff while the breaker
		// is open.
		var retryIn time.Duration
		if ctx.Err() == nil {
			retryIn = d.backoff(ev.Attempts + 1)
		}
		if err := d.out.EventPostponed(mctx, ev.Seq, d.owner, retryIn); err != nil {
			d.dbe.Inc()
			d.log.Warn("webhook outbox: postpone", "url", t.client.Name(), "event_id", ev.ID, "err", err)
		}
		return false
	}
	d.failed.Inc()
	attempts := ev.Attempts + 1
	giveUp := d.cfg.MaxAttempts > 0 && attempts >= d.cfg.MaxAttempts
	retryIn := d.backoff(attempts)
	if giveUp {
		d.gaveUp.Inc()
		d.log.Error("webhook delivery given up (webhooks.max_attempts)", "url", t.client.Name(), "event_id", ev.ID, "type", ev.Type, "attempts", attempts, "err", derr)
	} else {
		d.log.Warn("webhook delivery failed", "url", t.client.Name(), "event_id", ev.ID, "type", ev.Type, "attempts", attempts, "retry_in", retryIn.String(), "err", derr)
	}
	if err := d.out.EventFailed(mctx, ev.Seq, d.owner, retryIn, giveUp, derr.Error()); err != nil {
		d.dbe.Inc()
		d.log.Warn("webhook outbox: mark failed", "url", t.client.Name(), "event_id", ev.ID, "err", err)
	}
	return false
}

// errStatus is a receiver's answer other than 2xx.
var errStatus = errors.New("receiver did not answer 2xx")

// deliver POSTs ev to t once (the client may retry a dropped connection).
func (d *Dispatcher) deliver(ctx context.Context, t *target, ev store.OutboxEvent) error {
	body, err := Body(ev)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(t.url)
	req.Header.SetContentType("application/json")
	req.Header.Set(EventIDHeader, ev.ID)
	req.Header.Set(SignatureHeader, Sign(*d.secret.Load(), body))
	// The event id makes the POST safe to repeat; the client retries
	// requests that carry an Idempotency-Key.
	req.Header.Set("Idempotency-Key", ev.ID)
	req.SetBody(body)
	// The POST continues the trace of the request that made the change.
	ctx = d.tracer.Continue(upstream.WithRequestID(ctx, ev.ID), ev.Traceparent, ev.Tracestate)
	if err := t.client.Do(ctx, req, resp); err != nil {
		return err
	}
	if code := resp.StatusCode(); code < 200 || code > 299 {
		return fmt.Errorf("%w: %d", errStatus, code)
	}
	return nil
}

// backoff is the wait before retrying an event that failed attempts times:
// exponential, capped, drawn from [d/2, d] so that events failing together
// do not come back together.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.timing.retryMax
	if attempts < 30 {
		b = min(d.timing.retryBase<<(attempts-1), d.timing.retryMax)
	}
	return b/2 + mrand.N(b/2+1)
}

// housekeep refreshes the backlog gauge and prunes old events.
func (d *Dispatcher) housekeep(ctx context.Context) {
	defer d.wg.Done()
	tick := time.NewTicker(d.timing.backlog)
	defer tick.Stop()
	var lastPrune time.Time
	for {
		if !d.housekeeping.Load() {
			// Webhooks have been off since start: this process records
			// nothing, and leaves an outbox from earlier alone.
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				continue
			}
		}
		if n, err := d.out.EventBacklog(ctx); err == nil {
			d.backlog.Store(n)
		} else if ctx.Err() == nil {
			d.dbe.Inc()
		}
		if time.Since(lastPrune) >= d.timing.prune {
			lastPrune = time.Now()
			n, err := d.out.PruneEvents(ctx, lastPrune.Add(-d.cfg.Retention))
			switch {
			case err != nil && ctx.Err() == nil:
				d.dbe.Inc()
				d.log.Warn("webhook outbox: prune", "err", err)
			case n > 0:
				d.log.Info("webhook outbox pruned", "events", n, "retention", d.cfg.Retention.String())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// upstreamName labels a receiver's metrics: its URL without query or
// credentials, which may hold secrets.
func upstreamName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "webhook"
	}
	return "webhook " + u.Scheme + "://" + u.Host + u.EscapedPath()
}

// newOwner names this process as a lease owner: readable in the outbox
// table, unique across restarts and replicas.
func newOwner() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webhook owner id: %w", err)
	}
	host, _ := os.Hostname() // only decoration; the random part makes it unique
	return host + "-" + hex.EncodeToString(b[:]), nil
}
