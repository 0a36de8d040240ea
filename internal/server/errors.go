package server

import (
	"errors"
	"net"
	"os"

	"github.com/valyala/fasthttp"

	"github.com/hotpath/hotpath/internal/problem"
)

// answerError replaces fasthttp's ErrorHandler, which answers an oversized
// body with 400 and a partial header cut by the deadline with 400 too. It
// runs only for requests that never reached a handler; fasthttp adds
// Connection: close to every such answer.
func (s *Server) answerError(ctx *fasthttp.RequestCtx, err error) {
	status, detail := errorAnswer(err)
	s.refused(status)
	problem.WriteStatus(ctx, status, detail)
}

func errorAnswer(err error) (status int, detail string) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return fasthttp.StatusRequestEntityTooLarge, "the request body is larger than server.max_body_size"
	case errors.As(err, &small):
		return fasthttp.StatusRequestHeaderFieldsTooLarge, "the request line and headers are larger than server.read_buffer_size"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fasthttp.StatusRequestTimeout, "the request did not arrive within server.read_timeout"
	}
	// The parse error itself is not shown: it may quote request bytes.
	return fasthttp.StatusBadRequest, "the request is not valid HTTP/1.1"
}

// expectUnder refuses "Expect: 100-continue" requests that announce a body
// over maxBody, before the client is told to send it.
func (s *Server) expectUnder(maxBody int) func(ctx *fasthttp.RequestCtx) int {
	return func(ctx *fasthttp.RequestCtx) int {
		if ctx.Request.Header.ContentLength() > maxBody {
			problem.WriteStatus(ctx, fasthttp.StatusRequestEntityTooLarge, "the request body is larger than server.max_body_size")
			s.refused(fasthttp.StatusRequestEntityTooLarge)
			return fasthttp.StatusRequestEntityTooLarge
		}
		if c, ok := ctx.Conn().(*limitedConn); ok {
			c.expectBody()
		}
		return fasthttp.StatusContinue
	}
}
