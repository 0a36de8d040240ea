package main

import (
	"os"
	"strings"
	"testing"
)

// TestConfigFileMarksEveryKey checks that config.toml documents every key
// the service reads, hotpath's and its own, and tags each comment
// [reloads] or [restart] as the service says.
func TestConfigFileMarksEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../config.toml")
	keys := map[string]bool{} // name -> reloads
	for _, k := range newApp().Keys() {
		keys[k.Name] = k.Reloads
	}
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	section, seen := "", 0
	for i, l := range lines {
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			section = strings.Trim(l, "[]")
			continue
		}
		name, _, ok := strings.Cut(l, " = ")
		if !ok || section == "" || strings.HasPrefix(l, "#") {
			continue
		}
		key := section + "." + name
		j := i
		for j > 0 && strings.HasPrefix(lines[j-1], "# ") {
			j--
		}
		want := "# [restart] "
		if keys[key] {
			want = "# [reloads] "
		}
		if j == i || !strings.HasPrefix(lines[j], want) {
			t.Errorf("config.toml line %d: the comment of %s should start with %q", j+1, key, want)
		}
		seen++
	}
	if want := len(keys) - 1; seen != want { // "upstreams" has only an example
		t.Errorf("config.toml has %d keys, want %d", seen, want)
	}
}
