// Command notes is a small service built on hotpath: a notes resource
// under /v1, stored in SQLite (or PostgreSQL), with bearer-token writes,
// Idempotency-Key, ETags, webhooks and its generated OpenAPI document.
package main

import (
	"embed"
	"io/fs"
	"os"

	"github.com/hotpath/hotpath"
)

// Config is the service's own section, [notes].
type Config struct {
	// MaxNotes caps the notes stored: a create beyond it is 409.
	MaxNotes int `koanf:"max_notes" reload:"true"`
}

// Validate checks notes.max_notes.
func (c *Config) Validate() error {
	if c.MaxNotes < 1 {
		return hotpath.ConfigError("max_notes", "must be at least 1")
	}
	return nil
}

//go:embed migrations
var migrations embed.FS

func newApp(opts ...hotpath.Option) *hotpath.App {
	app := hotpath.New("notes", append([]hotpath.Option{hotpath.Info("Notes", "Short notes: a title and a body.")}, opts...)...)
	sub, _ := fs.Sub(migrations, "migrations") // embedded above: cannot fail
	app.Migrations("notes", sub)
	s := &notes{db: app.DB(), cfg: hotpath.Section(app, "notes", Config{MaxNotes: 100000})}
	hotpath.POST(app, "/v1/notes", s.create, hotpath.Auth(), hotpath.Idempotent(), hotpath.ETag(noteTag),
		hotpath.Problems(409), hotpath.Summary("Add a note"))
	hotpath.GET(app, "/v1/notes/{id}", s.get, hotpath.ETag(noteTag), hotpath.Summary("Read a note"))
	hotpath.GET(app, "/v1/notes", s.list, hotpath.Summary("List notes, a page at a time"))
	hotpath.DELETE(app, "/v1/notes/{id}", s.delete, hotpath.Auth(), hotpath.Idempotent(), hotpath.Summary("Delete a note"))
	app.OpenAPI("/v1/openapi.json")
	return app
}

func main() { os.Exit(newApp().Main()) }
