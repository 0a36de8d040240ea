package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

// BenchmarkCompressedPages serves /fortunes and a 100-item
// /api/v1/fortunes page through the whole chain, SQLite behind it, in each
// coding, reporting the bytes each answer puts on the wire (wire-B/op):
//
//	go test -run '^$' -bench CompressedPages -benchmem ./cmd/hotpath
func BenchmarkCompressedPages(b *testing.B) {
	srv, conn := newMemServerWith(b, 0, "--server.compress=true")
	db := srv.direct(b)
	for i := range 100 {
		if _, err := db.AddFortune(context.Background(), fmt.Sprintf("fortune number %d, added so a page holds a hundred", i)); err != nil {
			b.Fatal(err)
		}
	}
	for _, path := range []string{"/fortunes", "/api/v1/fortunes?limit=100"} {
		for _, coding := range []string{"identity", "gzip", "br", "zstd"} {
			b.Run(path+"/"+coding, func(b *testing.B) {
				req := "GET " + path + " HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: " + coding + "\r\n\r\n"
				var wire int
				b.ReportAllocs()
				for b.Loop() {
					conn.In.WriteString(req)
					if err := srv.ServeConn(conn); err != nil {
						b.Fatal(err)
					}
					if !bytes.HasPrefix(conn.Out.Bytes(), []byte("HTTP/1.1 200")) {
						b.Fatalf("%s: %q", path, conn.Out.Bytes())
					}
					wire = conn.Out.Len()
					conn.Out.Reset()
				}
				b.ReportMetric(float64(wire), "wire-B/op")
			})
		}
	}
}
