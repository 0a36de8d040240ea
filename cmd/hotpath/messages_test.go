package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigMistakesGiveExactMessages pins the one line and the exit status
// of each kind of configuration mistake, as an operator sees them.
func TestConfigMistakesGiveExactMessages(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(broken, []byte("[server]\naddr = \":8080\"\n[db\ndriver = \"sqlite\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const unknown = "unknown key; see config.toml for the keys hotpath reads"
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"TOML syntax error", nil, []string{"-config", broken},
			"hotpath: config: -config (" + broken + ":3:4): TOML syntax error: expected character ]"},
		{"mistyped flag", nil, []string{"--server.adrr=:8081"},
			"hotpath: config: server.adrr (flag --server.adrr): " + unknown},
		{"mistyped flag, one dash", nil, []string{"-server.adrr", ":8081"},
			"hotpath: config: server.adrr (flag --server.adrr): " + unknown},
		{"mistyped environment key", []string{"HOTPATH_SERVER__ADRR=:8081"}, nil,
			"hotpath: config: server.adrr (environment HOTPATH_SERVER__ADRR): " + unknown},
		{"mistyped switch", nil, []string{"-confg", "x.toml"},
			"hotpath: config: -confg (command line): unknown flag; hotpath takes -config PATH, -version and --section.key=value for any key in config.toml"},
		{"flag without its value", nil, []string{"--server.addr"},
			"hotpath: config: server.addr (flag --server.addr): needs a value: --server.addr=VALUE"},
		{"in-flight cap neither a count nor auto", nil, []string{"--server.max_inflight=lots"},
			`hotpath: config: server.max_inflight (flag --server.max_inflight): invalid value "lots": want a non-negative integer or "auto"`},
		{"negative in-flight cap", []string{"HOTPATH_SERVER__MAX_INFLIGHT=-3"}, nil,
			`hotpath: config: server.max_inflight (environment HOTPATH_SERVER__MAX_INFLIGHT): must be 0 (no cap), a positive count or "auto", got -3`},
		{"unknown driver", nil, []string{"--db.driver=mysql"},
			`hotpath: config: db.driver (flag --db.driver): invalid value "mysql": want one of sqlite, postgres`},
		{"unknown log level", []string{"HOTPATH_LOG__LEVEL=loud"}, nil,
			`hotpath: config: log.level (environment HOTPATH_LOG__LEVEL): invalid value "loud": want one of debug, info, warn, error`},
		{"not a boolean", nil, []string{"--admin.pprof=yes"},
			`hotpath: config: admin.pprof (flag --admin.pprof): invalid value "yes": want true or false`},
		{"not an integer", nil, []string{"--server.max_body_size=1MB"},
			`hotpath: config: server.max_body_size (flag --server.max_body_size): invalid value "1MB": want an integer`},
		{"not a duration", nil, []string{"--shutdown.drain=5"},
			`hotpath: config: shutdown.drain (flag --shutdown.drain): invalid duration "5": use a Go duration such as "5s" or "250ms"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runExit(t, tc.env, tc.args...)
			if code != 2 || stderr != tc.want+"\n" {
				t.Errorf("env %v args %v:\n got exit %d, stderr %q\nwant exit 2, stderr %q", tc.env, tc.args, code, stderr, tc.want+"\n")
			}
		})
	}
}

// TestListenerInUseExitsWithOnePlainLine: a port that cannot be bound stops
// start-up with status 1 and, as the last line on stderr, one plain line
// naming the key and the address.
func TestListenerInUseExitsWithOnePlainLine(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	const reason = "address already in use; stop the process listening there or choose another address"
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--server.addr=" + addr, "--admin.addr=127.0.0.1:0"}, "hotpath: server.addr " + addr + ": " + reason},
		{[]string{"--server.addr=127.0.0.1:0", "--admin.addr=" + addr}, "hotpath: admin.addr " + addr + ": " + reason},
	}
	for _, tc := range cases {
		code, _, stderr := runExit(t, nil, tc.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		last := lines[len(lines)-1]
		if code != 1 || last != tc.want {
			t.Errorf("args %v:\n got exit %d, last stderr line %q\nwant exit 1, %q\nstderr:\n%s", tc.args, code, last, tc.want, stderr)
		}
		for _, l := range lines[:len(lines)-1] {
			if !strings.HasPrefix(l, "{") || strings.Contains(l, "address already in use") {
				t.Errorf("args %v: before the plain line, want only JSON log lines without the reason, got %q", tc.args, l)
			}
		}
	}
}
