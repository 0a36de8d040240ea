package check

import (
	"strings"
	"testing"
)

func TestDockerfileBuildsStaticNonRootImage(t *testing.T) {
	img := loadDockerfile(t)
	// The build stage must produce what the runtime stage can run: a static
	// binary (no libc there) stamped with the version like `make build`.
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "ARG VERSION", "./cmd/hotpath"} {
		if !strings.Contains(img.buildStage, want) {
			t.Errorf("Dockerfile build stage lacks %q", want)
		}
	}
	if !strings.HasPrefix(img.base, "gcr.io/distroless/static") && img.base != "scratch" {
		t.Errorf("runtime base %q: want distroless/static or scratch", img.base)
	}
	if got := img.entrypoint; len(got) == 0 || got[0] != "/hotpath" {
		t.Errorf("ENTRYPOINT %q: want /hotpath first", got)
	}
	cfg := img.configPath(t)
	copied := false
	for _, c := range img.copies {
		if f := strings.Fields(c); len(f) == 2 && f[0] == "config.toml" && f[1] == cfg {
			copied = true
		}
	}
	if !copied {
		t.Errorf("no `COPY config.toml %s`: the image would start without the config its ENTRYPOINT names", cfg)
	}
}
