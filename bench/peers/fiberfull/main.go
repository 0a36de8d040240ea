// Command fiberfull is the Fiber v2 peer built the way Fiber's users build a
// production service, doing hotpath's job on the benchmark routes: the
// requestid, helmet, recover and logger middleware of Fiber itself,
// fiberprometheus for request metrics by route template and status (served
// on a second listener), JSON access-log lines on stdout for every request,
// and hotpath's read, write and idle timeouts.
package main

import (
	"errors"
	"time"

	"github.com/ansrivas/fiberprometheus/v2"
	"github.com/goccy/go-json"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/helmet"
	"github.com/gofiber/fiber/v2/middleware/logger"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"

	"github.com/hotpath/hotpath/bench/internal/tfb"
)

// accessFormat is one JSON line per request with the fields of hotpath's
// access log.
const accessFormat = `{"time":"${time}","level":"INFO","msg":"request","request_id":"${locals:requestid}",` +
	`"method":"${method}","route":"${route}","path":"${url}","status":${status},"latency":"${latency}",` +
	`"remote_addr":"${ip}","user_agent":"${ua}"}` + "\n"

type handler struct{ db *tfb.DB }

func main() {
	tfb.RunFullPeer(func(db *tfb.DB, f tfb.PeerFlags) (func() error, func()) {
		prom := fiberprometheus.NewWithDefaultRegistry("fiber-full")
		app := newApp(&handler{db: db}, f, prom)
		metrics := fiber.New(fiber.Config{DisableStartupMessage: true})
		prom.RegisterAt(metrics, "/metrics")
		serve := func() error {
			errc := make(chan error, 1)
			go func() { errc <- metrics.Listen(f.MetricsAddr) }()
			return errors.Join(app.Listen(f.Addr), <-errc)
		}
		return serve, func() {
			// The errors only say that a server was not running.
			app.Shutdown()
			metrics.Shutdown()
		}
	})
}

func newApp(h *handler, f tfb.PeerFlags, prom *fiberprometheus.FiberPrometheus) *fiber.App {
	app := fiber.New(fiber.Config{
		ServerHeader:          "fiber",
		DisableStartupMessage: true,
		JSONEncoder:           json.Marshal,
		JSONDecoder:           json.Unmarshal,
		ReadTimeout:           tfb.ReadTimeout,
		WriteTimeout:          tfb.WriteTimeout,
		IdleTimeout:           tfb.IdleTimeout,
	})
	app.Use(requestid.New())
	app.Use(logger.New(logger.Config{Format: accessFormat, TimeFormat: time.RFC3339Nano, Output: f.AccessLog()}))
	app.Use(prom.Middleware)
	app.Use(helmet.New())
	app.Use(recover.New())

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
	app.Get("/api/v1/fortunes", func(c *fiber.Ctx) error {
		limit, after, err := tfb.ParsePage(c.Query("limit"), c.Query("after"))
		if err != nil {
			return fiber.NewError(fiber.StatusUnprocessableEntity, err.Error())
		}
		rows, err := h.db.FortunesAfter(c.Context(), after, limit+1)
		return result(c, tfb.NewPage(rows, limit), err)
	})
	if f.TestRoutes {
		app.Get("/panic", func(*fiber.Ctx) error { panic("test route") })
	}
	return app
}

// result answers v as JSON, or hands err to Fiber's error handler (500).
func result(c *fiber.Ctx, v any, err error) error {
	if err != nil {
		return err
	}
	return c.JSON(v)
}
