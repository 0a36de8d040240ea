package process

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// bindReason says why a listen failed and what to do about it.
func bindReason(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return strings.Join(strings.Fields(err.Error()), " ")
	}
	switch errno {
	case syscall.EADDRINUSE:
		return "address already in use; stop the process listening there or choose another address"
	case syscall.EACCES:
		return "permission denied; ports below 1024 need root or the CAP_NET_BIND_SERVICE capability"
	case syscall.EADDRNOTAVAIL:
		return "address not available; no network interface of this host has that IP"
	}
	return errno.Error()
}

// drainNotice tells someone who pressed Ctrl-C at a terminal why the
// process has not exited yet; the JSON log line says the same to machines.
func drainNotice(stderr io.Writer, program string, drain, timeout time.Duration) {
	if isTerminal(stderr) {
		fmt.Fprintf(stderr, "%s: draining for %s (shutdown.drain), then stopping within %s (shutdown.timeout); Ctrl-C again exits at once\n", program, drain, timeout)
	}
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
