package main

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/hotpath/hotpath"
)

// The HTML form that adds a fortune: GET /fortunes/new shows it, POST
// /fortunes takes it. Its route options do the guarding (CSRF: a token
// bound to a cookie, and the origin checks; Public: anyone, held to
// limits.anonymous_writes); this file renders and stores.

// formPage is the form. Values are escaped by html/template for the
// context they land in; the message goes into a textarea, where escaping
// also keeps a "</textarea>" in it from ending the element.
var formPage = template.Must(template.New("form").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Add a fortune</title></head>
<body>
<h1>Add a fortune</h1>
{{if .Errors}}<ul id="errors">{{range .Errors}}<li>{{.Field}}: {{.Detail}}</li>{{end}}</ul>{{end}}
<form method="post" action="/fortunes">
<input type="hidden" name="csrf_token" value="{{.Token}}">
<label for="message">Message (1 to 500 characters)</label><br>
<textarea id="message" name="message" rows="4" cols="60" maxlength="500" required>{{.Message}}</textarea><br>
<button type="submit" id="submit">Add</button>
</form>
<p><a href="/fortunes">All fortunes</a></p>
</body></html>
`))

// formData is what formPage shows.
type formData struct {
	Token   string
	Message string
	Errors  hotpath.FieldErrors
}

// newFortuneForm answers GET /fortunes/new with an empty form.
func (s *service) newFortuneForm(c *hotpath.Ctx) error {
	return render(c, http.StatusOK, formData{Token: c.CSRFToken()})
}

// postFortuneForm answers POST /fortunes: it validates the message as
// POST /api/v1/fortunes does (422 shows the form again with the errors),
// stores it and sends the browser to /fortunes (303).
func (s *service) postFortuneForm(c *hotpath.Ctx) error {
	// Browsers send a textarea's line breaks as CRLF; the API's rule is
	// newline only, so store them as the user typed them: one LF.
	msg := strings.ReplaceAll(string(c.FormValue("message")), "\r\n", "\n")
	in := NewFortune{Message: msg}
	if err := hotpath.Validate(&in); err != nil {
		var fields hotpath.FieldErrors
		if errors.As(err, &fields) {
			return render(c, http.StatusUnprocessableEntity, formData{Token: c.CSRFToken(), Message: msg, Errors: fields})
		}
		return err
	}
	driver, max := s.data.db.Driver(), s.api.Get().MaxFortunes
	err := s.data.db.Write(c.Context(), func(tx *hotpath.Tx) error {
		_, err := addFortune(tx, driver, in.Message, max)
		return err
	})
	if err != nil {
		s.countRefusal(err)
		return err
	}
	c.Redirect(http.StatusSeeOther, "/fortunes")
	return nil
}

// render answers with the form.
func render(c *hotpath.Ctx, status int, d formData) error {
	var page bytes.Buffer
	if err := formPage.Execute(&page, d); err != nil {
		return err // the template and formData are fixed: a programming mistake
	}
	// The page holds a token bound to this client's cookie.
	c.SetHeader("Cache-Control", "no-store")
	c.Text(status, contentTypeHTML, page.Bytes())
	return nil
}
