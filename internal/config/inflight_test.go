package config

import (
	"errors"
	"testing"
)

func TestMaxInflightTakesAutoOrACount(t *testing.T) {
	cases := []struct {
		args []string
		env  []string
		want int
	}{
		{args: []string{"--server.max_inflight=auto"}, want: AutoInflight},
		{env: []string{"HOTPATH_SERVER__MAX_INFLIGHT=auto"}, want: AutoInflight},
		{args: []string{"-config", writeFile(t, "[server]\nmax_inflight = \"auto\"\n")}, want: AutoInflight},
		{args: []string{"--server.max_inflight=250"}, want: 250},
		{want: 0},
	}
	for _, tc := range cases {
		cfg, _, err := Load(hotpathSpec, append([]string{"-config", writeFile(t, "")}, tc.args...), tc.env)
		if err != nil || cfg.Server.MaxInflight != tc.want {
			t.Errorf("args %v env %v: max_inflight %d, err %v; want %d", tc.args, tc.env, cfg.Server.MaxInflight, err, tc.want)
		}
	}
	for _, bad := range []string{"--server.max_inflight=-5", "--server.max_inflight=adaptive"} {
		_, _, err := Load(hotpathSpec, []string{"-config", writeFile(t, ""), bad}, nil)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != "server.max_inflight" {
			t.Errorf("%s: err %v, want a config error naming server.max_inflight", bad, err)
		}
	}
}
