package openapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hotpath/hotpath/internal/typed"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from what Build writes")

type noteID struct {
	ID int64 `path:"id" minimum:"1" doc:"The note's id."`
}

type newNote struct {
	Text string   `json:"text" minLength:"1" maxLength:"280" doc:"What the note says."`
	Tags []string `json:"tags,omitempty" maxItems:"8" pattern:"^[a-z]+$"`
}

type editNote struct {
	ID   int64  `path:"id" minimum:"1"`
	Text string `json:"text" minLength:"1" maxLength:"280"`
}

type listNotes struct {
	Limit int    `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"Page size."`
	Tag   string `query:"tag" pattern:"^[a-z]+$"`
}

type note struct {
	ID   int64    `json:"id"`
	Text string   `json:"text"`
	Tags []string `json:"tags"`
}

type notePage struct {
	Items []note  `json:"items"`
	Next  *string `json:"next" doc:"Path of the next page; null on the last one."`
}

func mustCompile[T any](t testing.TB) *typed.Input {
	t.Helper()
	in, err := typed.CompileInput(reflect.TypeFor[T]())
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// notesOperations covers every option of Operation.
func notesOperations(t testing.TB) []Operation {
	return []Operation{
		{Method: "GET", Path: "/v1/notes", ID: "listNotes", Summary: "List notes", Tags: []string{"notes"},
			Input: mustCompile[listNotes](t), Status: 200, Output: reflect.TypeFor[notePage](),
			SuccessHeaders: []string{"ETag", "Cache-Control", "Vary", "Content-Encoding", "RateLimit", "RateLimit-Policy"},
			ExtraParams:    []Param{IfNoneMatchParam()}, Errors: []int{503, 422, 429}, NotModified: true},
		{Method: "POST", Path: "/v1/notes", ID: "createNote", Summary: "Add a note", Description: "Stored as sent.", Tags: []string{"notes"},
			Input: mustCompile[newNote](t), Status: 201, Output: reflect.TypeFor[note](),
			SuccessHeaders: []string{"Location", "ETag", "Cache-Control", "Idempotency-Replayed"},
			ExtraParams:    []Param{IdempotencyKeyParam()}, Errors: []int{400, 401, 409, 413, 415, 422, 429, 503}, Bearer: true},
		{Method: "GET", Path: "/v1/notes/{id}", ID: "getNote", Summary: "Read one note",
			Input: mustCompile[noteID](t), Status: 200, Output: reflect.TypeFor[note](),
			SuccessHeaders: []string{"ETag", "Cache-Control"}, ExtraParams: []Param{IfNoneMatchParam()},
			Errors: []int{400, 404, 405}, NotModified: true},
		{Method: "PUT", Path: "/v1/notes/{id}", ID: "editNote", Summary: "Change a note",
			Input: mustCompile[editNote](t), Status: 200, Output: reflect.TypeFor[note](),
			ExtraParams: []Param{IfMatchParam(), IdempotencyKeyParam()}, Errors: []int{400, 401, 404, 412, 422}, Bearer: true},
		{Method: "DELETE", Path: "/v1/notes/{id}", ID: "deleteNote", Summary: "Delete a note",
			Input: mustCompile[noteID](t), Status: 204, SuccessHeaders: []string{"Cache-Control"},
			ExtraParams: []Param{IfMatchParam()}, Errors: []int{401, 404, 412}, Bearer: true},
		{Method: "GET", Path: "/v1/notes.html", ID: "notesPage", Summary: "The notes as a page",
			Status: 200, Output: reflect.TypeFor[string](), OutputContentType: "text/html; charset=utf-8"},
	}
}

// TestBuildWritesASmallDocumentExactly pins every byte of a one-operation
// document against testdata/small.json: what a reader of the document
// sees for a path parameter, a JSON answer, a 304 and two problems.
func TestBuildWritesASmallDocumentExactly(t *testing.T) {
	doc, err := Build(Info{Title: "notes", Version: "1.0.0", Description: "Notes as JSON."}, notesOperations(t)[2:3], typed.NewSchemas())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/small.json", doc)
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Build wrote a document other than %s (go test -run %s -update rewrites it):\n%s", path, t.Name(), got)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	a, err := Build(Info{Title: "notes", Version: "1"}, notesOperations(t), typed.NewSchemas())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, err := Build(Info{Title: "notes", Version: "1"}, notesOperations(t), typed.NewSchemas())
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("a second Build wrote other bytes (err %v)", err)
		}
	}
}

// TestBuildDescribesEachOption reads the full document back and checks
// each option where it lands.
func TestBuildDescribesEachOption(t *testing.T) {
	raw, err := Build(Info{Title: "notes", Version: "1"}, notesOperations(t), typed.NewSchemas())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI  string `json:"openapi"`
		Security []any  `json:"security"`
		Paths    map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Security    []map[string][]string
			Parameters  []struct {
				Ref      string `json:"$ref"`
				Name, In string
				Required bool
				Schema   map[string]any
			}
			RequestBody *struct {
				Required bool
				Content  map[string]struct{ Schema map[string]any }
			}
			Responses map[string]struct {
				Ref     string `json:"$ref"`
				Headers map[string]struct {
					Ref string `json:"$ref"`
				}
				Content map[string]struct{ Schema map[string]any }
			}
		}
		Components struct {
			Schemas         map[string]json.RawMessage
			Responses       map[string]struct{ Headers map[string]any }
			Parameters      map[string]struct{ Name string }
			Headers         map[string]any
			SecuritySchemes map[string]struct{ Type, Scheme string }
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	check("openapi", doc.OpenAPI, "3.1.0")
	check("top-level security", len(doc.Security), 0)
	list := doc.Paths["/v1/notes"]["get"]
	var params []string
	for _, p := range list.Parameters {
		params = append(params, p.Ref+strings.TrimSuffix(p.In+":"+p.Name, ":"))
	}
	check("listNotes parameters", strings.Join(params, " "), "query:limit query:tag #/components/parameters/IfNoneMatch")
	check("limit default", list.Parameters[0].Schema["default"], 20.0)
	check("listNotes statuses", keysOf(list.Responses), "200 304 422 429 503")
	check("listNotes 304", list.Responses["304"].Ref, "#/components/responses/NotModified")
	check("listNotes 200 headers", keysOf(list.Responses["200"].Headers), "Cache-Control Content-Encoding ETag RateLimit RateLimit-Policy Vary")
	check("listNotes security", len(list.Security), 0)

	create := doc.Paths["/v1/notes"]["post"]
	check("createNote security", create.Security, []map[string][]string{{"bearer": {}}})
	check("createNote body", create.RequestBody.Content["application/json"].Schema["$ref"], "#/components/schemas/newNote")
	check("createNote 409", create.Responses["409"].Ref, "#/components/responses/Conflict")
	check("createNote 201 body", create.Responses["201"].Content["application/json"].Schema["$ref"], "#/components/schemas/note")

	edit := doc.Paths["/v1/notes/{id}"]["put"]
	params = nil
	for _, p := range edit.Parameters {
		params = append(params, p.Ref+strings.TrimSuffix(p.In+":"+p.Name, ":"))
	}
	check("editNote parameters", strings.Join(params, " "), "path:id #/components/parameters/IfMatch #/components/parameters/IdempotencyKey")
	check("editNote id required", edit.Parameters[0].Required, true)
	check("editNote body", edit.RequestBody.Content["application/json"].Schema["$ref"], "#/components/schemas/editNote")
	check("deleteNote has no body", doc.Paths["/v1/notes/{id}"]["delete"].RequestBody == nil, true)
	check("deleteNote 204 content", len(doc.Paths["/v1/notes/{id}"]["delete"].Responses["204"].Content), 0)
	check("html page schema", doc.Paths["/v1/notes.html"]["get"].Responses["200"].Content["text/html; charset=utf-8"].Schema["type"], "string")

	check("security schemes", doc.Components.SecuritySchemes["bearer"], struct{ Type, Scheme string }{"http", "bearer"})
	check("401 headers", keysOf(doc.Components.Responses["Unauthorized"].Headers), "Cache-Control WWW-Authenticate")
	check("429 headers", keysOf(doc.Components.Responses["TooManyRequests"].Headers), "Cache-Control RateLimit RateLimit-Policy Retry-After")
	check("503 headers", keysOf(doc.Components.Responses["Unavailable"].Headers), "Cache-Control Retry-After")
	check("409 headers", keysOf(doc.Components.Responses["Conflict"].Headers), "Cache-Control Retry-After")
	check("405 headers", keysOf(doc.Components.Responses["MethodNotAllowed"].Headers), "Allow Cache-Control")
	check("schemas", keysOf(doc.Components.Schemas), "Problem editNote newNote note notePage")
	check("parameters", keysOf(doc.Components.Parameters), "IdempotencyKey IfMatch IfNoneMatch")
	// The edit body has no id: parameters are not body members.
	if strings.Contains(string(doc.Components.Schemas["editNote"]), `"id"`) {
		t.Errorf("editNote's body schema names its path parameter: %s", doc.Components.Schemas["editNote"])
	}
}

func keysOf[V any](m map[string]V) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, " ")
}

func TestBuildRefusesWhatWouldMislead(t *testing.T) {
	ops := notesOperations(t)
	cases := []struct {
		name string
		ops  []Operation
		want string
	}{
		{"a template param with no field", []Operation{{Method: "GET", Path: "/v1/x/{id}", Status: 200}}, "no path parameter for"},
		{"a path field not in the template", []Operation{{Method: "GET", Path: "/v1/x", Input: mustCompile[noteID](t), Status: 200}}, `path parameter "id" is not in the template`},
		{"twice", []Operation{ops[0], ops[0]}, "same operationId"},
		{"twice without ids", []Operation{{Method: "GET", Path: "/a", Status: 200}, {Method: "get", Path: "/a", Status: 200}}, "described twice"},
		{"an unknown header", []Operation{{Method: "GET", Path: "/a", Status: 200, SuccessHeaders: []string{"X-Secret"}}}, `"X-Secret"`},
		{"a body on 204", []Operation{{Method: "DELETE", Path: "/a", Status: 204, Output: reflect.TypeFor[note]()}}, "has no body"},
		{"a success that is an error", []Operation{{Method: "GET", Path: "/a", Status: 404}}, "not 1xx to 3xx"},
		{"an error that is a success", []Operation{{Method: "GET", Path: "/a", Status: 200, Errors: []int{200}}}, "not a 4xx or 5xx"},
		{"an unknown method", []Operation{{Method: "BREW", Path: "/a", Status: 200}}, `method "BREW"`},
		{"an answer the schemas cannot describe", []Operation{{Method: "GET", Path: "/a", Status: 200, Output: reflect.TypeFor[chan int]()}}, "chan int"},
	}
	for _, c := range cases {
		if _, err := Build(Info{Title: "x", Version: "1"}, c.ops, typed.NewSchemas()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Build returned %v, want an error holding %q", c.name, err, c.want)
		}
	}
}
