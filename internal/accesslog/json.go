package accesslog

import (
	"encoding/hex"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends r as one JSON line (with the trailing newline) to dst.
// Every byte from the request is escaped, so a path or user agent holding
// quotes, newlines or invalid UTF-8 still makes one valid record.
func AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"time":"`...)
	dst = r.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","level":"INFO","msg":"request","request_id":`...)
	dst = appendString(dst, r.RequestID)
	if r.TraceID != ([16]byte{}) {
		dst = append(dst, `,"trace_id":"`...)
		dst = hex.AppendEncode(dst, r.TraceID[:])
		dst = append(dst, `","span_id":"`...)
		dst = hex.AppendEncode(dst, r.SpanID[:])
		dst = append(dst, '"')
	}
	dst = append(dst, `,"method":`...)
	dst = appendString(dst, r.Method)
	dst = append(dst, `,"route":`...)
	dst = appendString(dst, []byte(r.Route))
	dst = append(dst, `,"path":`...)
	dst = appendString(dst, r.Path)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, `,"duration_ms":`...)
	dst = strconv.AppendFloat(dst, float64(r.Duration)/float64(time.Millisecond), 'f', 3, 64)
	dst = append(dst, `,"bytes_in":`...)
	dst = strconv.AppendInt(dst, int64(r.BytesIn), 10)
	dst = append(dst, `,"bytes_out":`...)
	dst = strconv.AppendInt(dst, int64(r.BytesOut), 10)
	dst = append(dst, `,"remote_addr":`...)
	dst = appendString(dst, r.RemoteAddr)
	dst = append(dst, `,"user_agent":`...)
	dst = appendString(dst, r.UserAgent)
	return append(dst, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a quoted JSON string, replacing invalid UTF-8
// with U+FFFD and escaping quotes, backslashes, control characters and the
// HTML-special < > & (so logs viewed in a browser carry no markup).
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
