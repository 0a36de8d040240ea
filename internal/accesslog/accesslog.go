// Package accesslog writes one JSON line per logged request, off the
// request path: requests hand a pooled Record to a bounded queue that one
// writer goroutine drains; when the queue is full the record is dropped and
// counted, never blocking the request.
package accesslog

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// Record is one request's access-log entry. Byte fields are copies owned by
// the record, so the request's buffers may be reused once it is submitted.
type Record struct {
	Time      time.Time
	RequestID []byte
	// TraceID and SpanID are the request's trace context; zero when it has
	// none, and then not logged.
	TraceID    [16]byte
	SpanID     [8]byte
	Method     []byte
	Route      string
	Path       []byte
	Status     int
	Duration   time.Duration
	BytesIn    int
	BytesOut   int
	RemoteAddr []byte
	UserAgent  []byte
}

func (r *Record) reset() {
	*r = Record{
		RequestID:  r.RequestID[:0],
		Method:     r.Method[:0],
		Path:       r.Path[:0],
		RemoteAddr: r.RemoteAddr[:0],
		UserAgent:  r.UserAgent[:0],
	}
}

// maxField caps each variable field so a hostile request cannot make a
// huge log line or pin a huge pooled buffer.
const maxField = 2048

// Logger is the access-log writer. Acquire a Record, fill it, Submit it.
type Logger struct {
	queue   chan *Record
	out     io.Writer
	batch   []byte // whole lines waiting to be written, at most atomicWrite bytes
	dropped *vm.Counter
	// free holds records ready for reuse. Unlike a sync.Pool it is never
	// emptied by the GC, so once warm a logged request allocates nothing,
	// and it bounds the records in existence to the queue's size.
	free chan *Record
	made atomic.Int64
	quit chan struct{}
	done chan struct{}
	stop sync.Once
}

// New creates a logger writing to w with room for buffer waiting records;
// dropped counts records lost to a full queue. Start must be called.
func New(w io.Writer, buffer int, dropped *vm.Counter) *Logger {
	return &Logger{
		queue:   make(chan *Record, buffer),
		out:     w,
		batch:   make([]byte, 0, atomicWrite),
		dropped: dropped,
		free:    make(chan *Record, buffer),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Start runs the writer goroutine; Stop ends it.
func (l *Logger) Start() {
	go l.run()
}

// Acquire returns an empty record, or false when every record is waiting
// for the writer; the caller then drops its line (Drop counts it).
func (l *Logger) Acquire() (*Record, bool) {
	select {
	case r := <-l.free:
		return r, true
	default:
	}
	if l.made.Add(1) <= int64(cap(l.free)) {
		return new(Record), true
	}
	l.made.Add(-1)
	return nil, false
}

// Drop counts a line lost because no record was free.
func (l *Logger) Drop() { l.dropped.Inc() }

// Release returns an unsubmitted record for reuse.
func (l *Logger) Release(r *Record) {
	r.reset()
	select {
	case l.free <- r:
	default: // cannot happen: at most cap(free) records exist
	}
}

// Submit queues r for writing without waiting. The logger owns r afterwards.
func (l *Logger) Submit(r *Record) {
	select {
	case l.queue <- r:
	default:
		l.dropped.Inc()
		l.Release(r)
	}
}

// Stop writes what is queued, flushes and ends the writer. Records
// submitted after Stop wait in the queue or are dropped and counted.
func (l *Logger) Stop() {
	l.stop.Do(func() {
		close(l.quit)
		<-l.done
	})
}

func (l *Logger) run() {
	defer close(l.done)
	var line []byte
	for {
		select {
		case r := <-l.queue:
			line = l.write(line, r)
		case <-l.quit:
			for {
				select {
				case r := <-l.queue:
					line = l.write(line, r)
				default:
					l.flush()
					return
				}
			}
		}
	}
}

// atomicWrite is PIPE_BUF on Linux: a write to a pipe of at most this many
// bytes is not interleaved with other writers' (prefork children share
// stdout), so the writer sends whole lines in writes no larger.
const atomicWrite = 4096

// write formats and batches one record, writing when nothing else waits so
// lines reach the sink promptly at low rates and in batches at high ones.
func (l *Logger) write(line []byte, r *Record) []byte {
	line = AppendJSON(line[:0], r)
	l.Release(r)
	if len(l.batch)+len(line) > atomicWrite {
		l.flush()
	}
	if len(line) > atomicWrite {
		l.send(line) // cannot be atomic; alone, it at least splits no other line
	} else {
		l.batch = append(l.batch, line...)
	}
	if len(l.queue) == 0 {
		l.flush()
	}
	return line
}

func (l *Logger) flush() {
	if len(l.batch) > 0 {
		l.send(l.batch)
		l.batch = l.batch[:0]
	}
}

// send writes b whole. A write error (a closed stdout) cannot be reported
// anywhere better than by losing the lines; keep draining so requests
// never block.
func (l *Logger) send(b []byte) {
	for len(b) > 0 {
		n, err := l.out.Write(b)
		if err != nil {
			return
		}
		b = b[n:]
	}
}

// Append copies src into dst (capped at maxField bytes) and returns it.
func Append(dst, src []byte) []byte {
	if len(src) > maxField {
		src = src[:maxField]
	}
	return append(dst[:0], src...)
}
