package prefork

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
)

// ChildEnv is set to "1" in the environment of every child.
const ChildEnv = "HOTPATH_PREFORK_CHILD"

// IsChild reports whether this process is a prefork child.
func IsChild() bool { return os.Getenv(ChildEnv) == "1" }

// Run starts n children running this executable with args, each with
// GOMAXPROCS=1, passes termination signals to them and waits. It returns
// the exit status for the master: 0 when every child exited 0. When one
// child fails the others are stopped, so the supervisor above (Kubernetes,
// systemd) restarts the whole group.
func Run(n int, args []string, log *slog.Logger) int {
	exe, err := os.Executable()
	if err != nil {
		log.Error("prefork: find own executable", "err", err)
		return 1
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)
	// Each child reloads on its own SIGHUP (and watches the files itself).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	type exit struct {
		pid int
		err error
	}
	exits := make(chan exit, n)
	children := make([]*exec.Cmd, 0, n)
	for i := range n {
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), ChildEnv+"=1", "GOMAXPROCS=1", "HOTPATH_PREFORK_INDEX="+strconv.Itoa(i))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		// A child must not outlive a master killed with SIGKILL.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			log.Error("prefork: start child", "err", err)
			signalAll(children, syscall.SIGTERM)
			waitAll(children)
			return 1
		}
		children = append(children, cmd)
		go func() { exits <- exit{cmd.Process.Pid, cmd.Wait()} }()
	}
	log.Info("prefork: children started", "children", n)

	status, stopping, running := 0, false, n
	for running > 0 {
		select {
		case <-hup:
			log.Info("prefork: passing SIGHUP to children")
			signalAll(children, syscall.SIGHUP)
		case sig := <-signals:
			log.Info("prefork: passing signal to children", "signal", sig.String())
			stopping = true
			signalAll(children, sig)
		case e := <-exits:
			running--
			if e.err != nil {
				status = 1
				log.Error("prefork: child exited", "pid", e.pid, "err", e.err.Error())
			}
			if !stopping {
				// An unplanned exit: stop the group so it restarts whole.
				stopping = true
				status = 1
				log.Error("prefork: child exited while serving; stopping the others", "pid", e.pid)
				signalAll(children, syscall.SIGTERM)
			}
		}
	}
	return status
}

func signalAll(children []*exec.Cmd, sig os.Signal) {
	for _, c := range children {
		if err := c.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			fmt.Fprintln(os.Stderr, "prefork: signal child:", err)
		}
	}
}

func waitAll(children []*exec.Cmd) {
	for _, c := range children {
		_ = c.Wait() // exit statuses of an aborted start do not change the outcome
	}
}
