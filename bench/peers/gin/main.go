// Command gin is the Gin peer: gin.New with routes, c.JSON and c.HTML, pgx
// for the database.
package main

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/hotpath/hotpath/bench/internal/tfb"
)

type handler struct{ db *tfb.DB }

func main() {
	gin.SetMode(gin.ReleaseMode)
	tfb.RunPeer(func(db *tfb.DB, addr string) (func() error, func()) {
		srv := &http.Server{Addr: addr, Handler: engine(&handler{db: db}), ReadHeaderTimeout: 5 * time.Second}
		return srv.ListenAndServe, func() {
			srv.Shutdown(context.Background()) // idle connections close at once; nothing to report
		}
	})
}

func engine(h *handler) *gin.Engine {
	r := gin.New() // without gin.Default's logger, which would write a line per request
	r.SetHTMLTemplate(tfb.FortunesTemplate)
	r.Use(func(c *gin.Context) { c.Header("Server", "gin") })
	r.GET("/plaintext", func(c *gin.Context) { c.String(http.StatusOK, "Hello, World!") })
	r.GET("/json", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"message": "Hello, World!"}) })
	r.GET("/db", func(c *gin.Context) {
		w, err := h.db.World(c, tfb.RandomID())
		h.result(c, w, err)
	})
	r.GET("/queries", func(c *gin.Context) {
		ws, err := h.db.Worlds(c, tfb.Count(c.Query("queries")))
		h.result(c, ws, err)
	})
	r.GET("/updates", func(c *gin.Context) {
		ws, err := h.db.Update(c, tfb.Count(c.Query("queries")))
		h.result(c, ws, err)
	})
	r.GET("/fortunes", func(c *gin.Context) {
		fs, err := h.db.Fortunes(c)
		if err != nil {
			h.fail(c, err)
			return
		}
		c.HTML(http.StatusOK, "fortunes", tfb.AddAndSort(fs))
	})
	return r
}

func (h *handler) result(c *gin.Context, v any, err error) {
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (h *handler) fail(c *gin.Context, err error) {
	log.Printf("%s: %v", c.Request.URL.Path, err)
	c.String(http.StatusInternalServerError, "internal error")
}
