package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository root as seen from this package's directory,
// where go test runs.
const repoRoot = "../.."

// docFiles lists every Markdown file of the repository outside bench/results
// (generated reports), relative to the root.
func docFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path) // path is under repoRoot by construction
		if d.IsDir() && (rel == "bench/results" || strings.HasPrefix(d.Name(), ".") && rel != ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", repoRoot, err)
	}
	return files
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile("(?m)^#{1,6} +(.+)$")
	fence     = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchors returns the GitHub anchors of a Markdown file's headings.
func anchors(text string) map[string]bool {
	text = fence.ReplaceAllString(text, "")
	out := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(text, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(m[1])) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// TestDocLinksResolve keeps the documentation's web of links whole: every
// relative link in every Markdown file names a file that exists and, with a
// #fragment, a heading in it.
func TestDocLinksResolve(t *testing.T) {
	files := docFiles(t)
	if len(files) < 5 {
		t.Fatalf("found only %v; the walk is broken", files)
	}
	for _, file := range files {
		raw, err := os.ReadFile(filepath.Join(repoRoot, file))
		if err != nil {
			t.Fatal(err)
		}
		text := fence.ReplaceAllString(string(raw), "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := filepath.Join(filepath.Dir(file), path)
			if path == "" {
				dest = file
			}
			body, err := os.ReadFile(filepath.Join(repoRoot, dest))
			if err != nil {
				if _, statErr := os.Stat(filepath.Join(repoRoot, dest)); statErr == nil {
					continue // a directory
				}
				t.Errorf("%s: link %q: %s does not exist", file, target, dest)
				continue
			}
			if frag != "" && !anchors(string(body))[frag] {
				t.Errorf("%s: link %q: %s has no heading #%s", file, target, dest, frag)
			}
		}
	}
}

// TestReadmeLinksEveryPackageDoc checks that the front page reaches each
// README beside the code, so deep material moved out of it stays findable.
func TestReadmeLinksEveryPackageDoc(t *testing.T) {
	front, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range docFiles(t) {
		if file == "README.md" || filepath.Base(file) != "README.md" {
			continue
		}
		if !strings.Contains(string(front), "]("+filepath.ToSlash(file)) {
			t.Errorf("README.md does not link %s", file)
		}
	}
}

// TestAddAnEndpointGuideQuotesTheCode keeps the README's walkthrough true:
// each code block in "Add an endpoint" that follows a line naming a file
// (`path`:) must appear in that file character for character, and every Go
// block must name its file. Change the code, and this fails until the
// guide quotes the new code.
func TestAddAnEndpointGuideQuotesTheCode(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n## Add an endpoint\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Add an endpoint" section`)
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+4]
	}
	block := regexp.MustCompile("(?ms)^([^\n]*)\n\n?```([a-z]*)\n(.*?)^```")
	source := regexp.MustCompile("^`([^`]+)`:$")
	quoted := 0
	for i, m := range block.FindAllStringSubmatch(section, -1) {
		caption, lang, code := m[1], m[2], m[3]
		sm := source.FindStringSubmatch(strings.TrimSpace(caption))
		if sm == nil {
			if lang == "go" {
				t.Errorf("Go block %d (after %q) names no source file; put \"`path/to/file.go`:\" on the line before it", i+1, caption)
			}
			continue
		}
		file, err := os.ReadFile(filepath.Join(repoRoot, sm[1]))
		if err != nil {
			t.Errorf("block %d quotes %s: %v", i+1, sm[1], err)
			continue
		}
		if !strings.Contains(string(file), code) {
			t.Errorf("block %d of README.md's \"Add an endpoint\" is no longer in %s; quote the file as it now is in place of:\n%s", i+1, sm[1], code)
		}
		quoted++
	}
	if quoted < 5 {
		t.Errorf("found %d quoted blocks in \"Add an endpoint\", want at least 5: the guide or this test's parsing broke", quoted)
	}
}

// TestReadmeStaysShort holds the front page to its size: the whole README
// at most 450 lines, "Add an endpoint" at most 80, depth in the package
// READMEs it links.
func TestReadmeStaysShort(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if n := strings.Count(text, "\n"); n > 450 {
		t.Errorf("README.md has %d lines, want at most 450: move depth into a package README", n)
	}
	start := strings.Index(text, "\n## Add an endpoint\n")
	end := strings.Index(text[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal(`README.md has no "## Add an endpoint" section followed by another`)
	}
	if n := strings.Count(text[start+1:start+1+end], "\n"); n > 80 {
		t.Errorf(`"Add an endpoint" has %d lines, want at most 80`, n)
	}
}
