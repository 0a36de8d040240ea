// Package prefork runs hotpath as one master and one child process per CPU,
// all serving the same ports through SO_REUSEPORT. The master serves
// nothing: it starts the children, passes SIGTERM and SIGINT on so each
// drains, passes SIGHUP on so each reloads its configuration, and exits
// when they have.
//
// fasthttp/prefork re-spawns crashed children but does not pass signals on,
// so a SIGTERM to the master (what Kubernetes and systemd send) would not
// drain the children; this package does only what hotpath needs.
//
// # Signals
//
// With server.prefork, the master passes SIGTERM and SIGINT to each child,
// and each child drains as a single process does. A signal sent to the whole
// process group (Ctrl-C in a terminal, kill -TERM -PGID, systemd's default
// KillMode) reaches a child twice, directly and from the master; a child
// takes a second signal within a second of the first as the same one.
//
// # Shared stdout
//
// The children share stdout; each writes its access log in whole lines, at
// most 4 KiB a write (a pipe keeps such writes apart), so lines do not
// interleave, except a line over 4 KiB, which only a hostile path and user
// agent make.
package prefork
