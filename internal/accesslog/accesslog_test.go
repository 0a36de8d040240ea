package accesslog

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// blockedWriter never returns, like a stdout pipe nobody reads.
type blockedWriter struct{ unblock chan struct{} }

func (b blockedWriter) Write(p []byte) (int, error) {
	<-b.unblock
	return len(p), nil
}

func TestBlockedSinkDropsAndCountsWithoutBlocking(t *testing.T) {
	set := vm.NewSet()
	dropped := set.NewCounter("dropped")
	sink := blockedWriter{unblock: make(chan struct{})}
	l := New(sink, 8, dropped)
	l.Start()
	start := time.Now()
	for range 10000 {
		r, ok := l.Acquire()
		if !ok {
			l.Drop()
			continue
		}
		r.Path = Append(r.Path, []byte("/x"))
		l.Submit(r)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("10000 submissions took %s with a blocked sink, want no blocking", took)
	}
	// What was not dropped sits in the queue (8) or went into the writer's
	// buffer before its first flush blocked: a few records, never most.
	if kept := 10000 - dropped.Get(); kept > 100 {
		t.Errorf("%d of 10000 records were kept with a blocked sink, want only the few the queue and buffer hold", kept)
	}
	close(sink.unblock)
	l.Stop()
}

func TestStopFlushesQueuedRecords(t *testing.T) {
	var out strings.Builder
	l := New(&out, 16, vm.NewSet().NewCounter("d"))
	l.Start()
	for i := range 5 {
		r, ok := l.Acquire()
		if !ok {
			t.Fatal("no free record")
		}
		r.Status = 200 + i
		l.Submit(r)
	}
	l.Stop()
	if n := strings.Count(out.String(), "\n"); n != 5 {
		t.Errorf("after Stop %d lines written, want 5:\n%s", n, out.String())
	}
	// Submitting after Stop must not panic.
	if r, ok := l.Acquire(); ok {
		l.Submit(r)
	}
}

// writesRecorder keeps every Write call apart.
type writesRecorder struct{ writes []string }

func (w *writesRecorder) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestWritesAreWholeLinesWithinPipeBuf: prefork children share stdout, and
// a pipe keeps a write apart from other writers' only up to 4096 bytes, so
// every write holds whole lines and no more than that, but for a line that
// is longer on its own.
func TestWritesAreWholeLinesWithinPipeBuf(t *testing.T) {
	var out writesRecorder
	l := New(&out, 512, vm.NewSet().NewCounter("d"))
	for i := range 300 { // queued before the writer starts: one long batch
		r, ok := l.Acquire()
		if !ok {
			t.Fatal("no free record")
		}
		r.Path = Append(r.Path, []byte("/queries?queries="+strings.Repeat("9", i%40)))
		if i == 150 {
			r.UserAgent = Append(r.UserAgent, []byte(strings.Repeat("u", 2000)))
			r.Path = Append(r.Path, []byte("/"+strings.Repeat("p", 2000)))
		}
		l.Submit(r)
	}
	l.Start()
	l.Stop()
	lines := 0
	for i, w := range out.writes {
		if !strings.HasSuffix(w, "\n") {
			t.Fatalf("write %d does not end a line: %.80q", i, w)
		}
		n := strings.Count(w, "\n")
		lines += n
		if len(w) > atomicWrite && n > 1 {
			t.Errorf("write %d holds %d lines in %d bytes, want at most %d bytes unless it is one line", i, n, len(w), atomicWrite)
		}
	}
	if lines != 300 || len(out.writes) < 2 {
		t.Errorf("%d lines in %d writes, want 300 in several", lines, len(out.writes))
	}
}

func TestAppendJSONEscapesHostileBytes(t *testing.T) {
	hostile := []string{
		"/a\"b\\c", "/x\n{\"level\":\"ERROR\"}", "\x00\x01\x1f\x7f", "<script>&</script>",
		"\xff\xfe invalid utf8 \xc3", "日本語 — ok", strings.Repeat("A", 5000),
	}
	for _, h := range hostile {
		r := &Record{Time: time.Unix(0, 0), Path: Append(nil, []byte(h)), UserAgent: []byte(h), Method: []byte("GET"), Route: "/r"}
		line := AppendJSON(nil, r)
		if strings.Count(string(line), "\n") != 1 || line[len(line)-1] != '\n' {
			t.Errorf("input %q: line %q is not exactly one line", h, line)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Errorf("input %q: invalid JSON %q: %v", h, line, err)
			continue
		}
		if strings.ContainsAny(string(line), "<>&") {
			t.Errorf("input %q: line %q carries raw markup characters", h, line)
		}
		if len(m["path"].(string)) > maxField*3 {
			t.Errorf("input of %d bytes logged as %d bytes, want capped", len(h), len(m["path"].(string)))
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"/plain", "\"", "\\", "\n", "\xff", "<>&", "\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		line := AppendJSON(nil, &Record{Path: b, UserAgent: b, RequestID: b, Method: b, RemoteAddr: b})
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("input %q gives invalid JSON %q: %v", b, line, err)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	r := &Record{Time: time.Now(), RequestID: []byte("abc-1"), Method: []byte("GET"), Route: "/json", Path: []byte("/json?x=1"), Status: 200, UserAgent: []byte("wrk/4.1")}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], r)
	}
	_, _ = io.Discard.Write(buf)
}
