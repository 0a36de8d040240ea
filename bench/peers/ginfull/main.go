// Command ginfull is the Gin peer built the way Gin's users build a
// production service, doing hotpath's job on the benchmark routes:
// gin-contrib/requestid, gin-contrib/secure (nosniff), gin.Recovery, slog-gin
// writing a JSON access-log line per request through log/slog to stdout,
// go-http-metrics' Gin middleware for Prometheus request metrics by route
// template and status (served by promhttp on a second listener), and
// hotpath's read, write and idle timeouts.
package main

import (
	"log/slog"
	"net/http"

	"github.com/gin-contrib/requestid"
	"github.com/gin-contrib/secure"
	"github.com/gin-gonic/gin"
	sloggin "github.com/samber/slog-gin"
	metrics "github.com/slok/go-http-metrics/metrics/prometheus"
	"github.com/slok/go-http-metrics/middleware"
	ginmetrics "github.com/slok/go-http-metrics/middleware/gin"

	"github.com/hotpath/hotpath/bench/internal/tfb"
)

type handler struct{ db *tfb.DB }

func main() {
	gin.SetMode(gin.ReleaseMode)
	tfb.RunFullPeer(func(db *tfb.DB, f tfb.PeerFlags) (func() error, func()) {
		return tfb.ServeWithMetrics(f, engine(&handler{db: db}, f))
	})
}

func engine(h *handler, f tfb.PeerFlags) *gin.Engine {
	r := gin.New()
	r.SetHTMLTemplate(tfb.FortunesTemplate)
	access := slog.New(slog.NewJSONHandler(f.AccessLog(), nil))
	r.Use(
		requestid.New(),
		sloggin.New(access),
		ginmetrics.Handler("", middleware.New(middleware.Config{Recorder: metrics.NewRecorder(metrics.Config{})})),
		secure.New(secure.Config{ContentTypeNosniff: true}),
		gin.Recovery(),
		func(c *gin.Context) { c.Header("Server", "gin") },
	)
	r.GET("/plaintext", func(c *gin.Context) { c.String(http.StatusOK, "Hello, World!") })
	r.GET("/json", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"message": "Hello, World!"}) })
	r.GET("/db", func(c *gin.Context) {
		w, err := h.db.World(c, tfb.RandomID())
		result(c, w, err)
	})
	r.GET("/queries", func(c *gin.Context) {
		ws, err := h.db.Worlds(c, tfb.Count(c.Query("queries")))
		result(c, ws, err)
	})
	r.GET("/updates", func(c *gin.Context) {
		ws, err := h.db.Update(c, tfb.Count(c.Query("queries")))
		result(c, ws, err)
	})
	r.GET("/fortunes", func(c *gin.Context) {
		fs, err := h.db.Fortunes(c)
		if err != nil {
			fail(c, err)
			return
		}
		c.HTML(http.StatusOK, "fortunes", tfb.AddAndSort(fs))
	})
	r.GET("/api/v1/fortunes", func(c *gin.Context) {
		limit, after, err := tfb.ParsePage(c.Query("limit"), c.Query("after"))
		if err != nil {
			c.JSON(http.StatusUnprocessableEntity, gin.H{"detail": err.Error()})
			return
		}
		rows, err := h.db.FortunesAfter(c, after, limit+1)
		result(c, tfb.NewPage(rows, limit), err)
	})
	if f.TestRoutes {
		r.GET("/panic", func(*gin.Context) { panic("test route") })
	}
	return r
}

func result(c *gin.Context, v any, err error) {
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// fail answers 500; the error reaches the access log through c.Error.
func fail(c *gin.Context, err error) {
	c.Error(err) // returns err wrapped for chaining; nothing to do with it
	c.String(http.StatusInternalServerError, "internal error")
}
