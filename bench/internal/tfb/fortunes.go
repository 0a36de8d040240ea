package tfb

import (
	"html"
	"html/template"
	"slices"
	"strconv"
	"strings"
)

// ExtraFortune is the fortune every /fortunes answer adds at request time.
const ExtraFortune = "Additional fortune added at request time."

// FortunesTemplate renders a sorted fortune list as the TechEmpower page; the
// peers built on net/http use it the way such servers usually render HTML.
var FortunesTemplate = template.Must(template.New("fortunes").Parse(
	`<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>` +
		`<tr><th>id</th><th>message</th></tr>` +
		`{{range .}}<tr><td>{{.ID}}</td><td>{{.Message}}</td></tr>{{end}}` +
		`</table></body></html>`))

// AddAndSort appends the request-time fortune and sorts by message, as the
// TechEmpower rules require the application (not the database) to do.
func AddAndSort(fortunes []Fortune) []Fortune {
	fortunes = append(fortunes, Fortune{ID: 0, Message: ExtraFortune})
	slices.SortFunc(fortunes, func(a, b Fortune) int { return strings.Compare(a.Message, b.Message) })
	return fortunes
}

// AppendFortunesHTML appends the same page as FortunesTemplate to dst with
// escaped messages; the fasthttp-based peers use it to write into their
// response buffer without a template engine.
func AppendFortunesHTML(dst []byte, fortunes []Fortune) []byte {
	dst = append(dst, `<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>`...)
	for _, f := range fortunes {
		dst = append(dst, "<tr><td>"...)
		dst = strconv.AppendInt(dst, int64(f.ID), 10)
		dst = append(dst, "</td><td>"...)
		dst = append(dst, html.EscapeString(f.Message)...)
		dst = append(dst, "</td></tr>"...)
	}
	return append(dst, "</table></body></html>"...)
}
