package webhook

import (
	"testing"

	"go.uber.org/goleak"
)

// Every dispatcher a test starts must leave no goroutine behind once
// stopped. fasthttp's own cleaners are the exception: the dialer's address
// cache lives for the process, and a HostClient's idle-connection cleaner
// ends on its own one idle period after its connections are closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
		goleak.IgnoreTopFunction("github.com/valyala/fasthttp.(*TCPDialer).tcpAddrsClean"),
	)
}
