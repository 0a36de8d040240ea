// Command fiber is the Fiber v2 peer: app routes, c.JSON through goccy/go-json
// as Fiber recommends, pgx for the database.
package main

import (
	"log"

	"github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"

	"github.com/hotpath/hotpath/bench/internal/tfb"
)

type handler struct{ db *tfb.DB }

func main() {
	tfb.RunPeer(func(db *tfb.DB, addr string) (func() error, func()) {
		app := newApp(&handler{db: db})
		serve := func() error { return app.Listen(addr) }
		return serve, func() {
			app.Shutdown() // the error only says the server was not running
		}
	})
}

func newApp(h *handler) *fiber.App {
	app := fiber.New(fiber.Config{
		ServerHeader:          "fiber",
		DisableStartupMessage: true,
		JSONEncoder:           json.Marshal,
		JSONDecoder:           json.Unmarshal,
	})
	app.Get("/plaintext", func(c *fiber.Ctx) error { return c.SendString("Hello, World!") })
	app.Get("/json", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"message": "Hello, World!"}) })
	app.Get("/db", func(c *fiber.Ctx) error {
		w, err := h.db.World(c.Context(), tfb.RandomID())
		return result(c, w, err)
	})
	app.Get("/queries", func(c *fiber.Ctx) error {
		ws, err := h.db.Worlds(c.Context(), tfb.Count(c.Query("queries")))
		return result(c, ws, err)
	})
	app.Get("/updates", func(c *fiber.Ctx) error {
		ws, err := h.db.Update(c.Context(), tfb.Count(c.Query("queries")))
		return result(c, ws, err)
	})
	app.Get("/fortunes", func(c *fiber.Ctx) error {
		fs, err := h.db.Fortunes(c.Context())
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.Send(tfb.AppendFortunesHTML(nil, tfb.AddAndSort(fs)))
	})
	return app
}

// result answers v as JSON, or hands err to Fiber's error handler (500).
func result(c *fiber.Ctx, v any, err error) error {
	if err != nil {
		log.Printf("%s: %v", c.Path(), err)
		return err
	}
	return c.JSON(v)
}
