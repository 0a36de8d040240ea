package typed

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSchemasBodyCarriesTheConstraints pins the body schema of today's
// NewFortune: the constraints the decoder enforces, the pattern as
// written in the tag.
func TestSchemasBodyCarriesTheConstraints(t *testing.T) {
	s := NewSchemas()
	if got := marshal(t, s.Body(compile[newFortune](t))); got != `{"$ref":"#/components/schemas/newFortune"}` {
		t.Errorf("Body: %s", got)
	}
	want := `{"type":"object","properties":{"message":{"type":"string","minLength":1,"maxLength":500,"pattern":"^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$"}},"required":["message"],"additionalProperties":false}`
	if got := marshal(t, s.Components()["newFortune"]); got != want {
		t.Errorf("newFortune:\n got  %s\n want %s", got, want)
	}
}

type pageOut struct {
	Items []noteOut `json:"items"`
	Next  *string   `json:"next" doc:"Path of the next page; null on the last page."`
}

type noteOut struct {
	ID      int64             `json:"id" minimum:"1"`
	Text    string            `json:"text"`
	Tags    []string          `json:"tags,omitempty"`
	Meta    map[string]int    `json:"meta"`
	At      time.Time         `json:"at"`
	Small   int8              `json:"small"`
	Count   uint32            `json:"count"`
	Ratio   float32           `json:"ratio"`
	Raw     json.RawMessage   `json:"raw"`
	Bytes   []byte            `json:"bytes"`
	Any     any               `json:"any"`
	Quoted  int               `json:"quoted,string"`
	ByID    map[int]string    `json:"byId"`
	Pair    [2]int            `json:"pair"`
	Author  *author           `json:"author"`
	Editor  *author           `json:"editor,omitempty"`
	Skipped string            `json:"-"`
	secret  string            // unexported: not written
	Plain   string            // no tag: the field name
	Sub     struct{ X bool }  `json:"sub"`
	Level   string            `json:"level" enum:"a,b"`
	Opt     *string           `json:"opt" enum:"x,y"`
	Extra   map[string]string `json:"extra,omitempty"`
	embedded
	*ptrEmbedded
}

type author struct {
	Name string `json:"name"`
}

type embedded struct {
	Inline string `json:"inline"`
	Text   string `json:"text"` // shadowed by noteOut.Text, which is shallower
}

type ptrEmbedded struct {
	Maybe string `json:"maybe"`
}

// TestSchemasOfDescribesWhatTheEncoderWrites: each member as go-json
// writes it, required unless omitempty, null where nil is written.
func TestSchemasOfDescribesWhatTheEncoderWrites(t *testing.T) {
	_ = noteOut{secret: "the encoder skips unexported fields"}
	s := NewSchemas()
	if got := marshal(t, s.Of(reflect.TypeFor[pageOut]())); got != `{"$ref":"#/components/schemas/pageOut"}` {
		t.Fatalf("Of: %s", got)
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	c := s.Components()
	wantPage := `{"type":"object","properties":{"items":{"type":["array","null"],"items":{"$ref":"#/components/schemas/noteOut"}},"next":{"type":["string","null"],"description":"Path of the next page; null on the last page."}},"required":["items","next"],"additionalProperties":false}`
	if got := marshal(t, c["pageOut"]); got != wantPage {
		t.Errorf("pageOut:\n got  %s\n want %s", got, wantPage)
	}
	var note struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Required   []string                   `json:"required"`
	}
	if err := json.Unmarshal([]byte(marshal(t, c["noteOut"])), &note); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id":     `{"type":"integer","format":"int64","minimum":1}`,
		"text":   `{"type":"string"}`,
		"tags":   `{"type":"array","items":{"type":"string"}}`,
		"meta":   `{"type":["object","null"],"additionalProperties":{"type":"integer","format":"int64"}}`,
		"at":     `{"type":"string","format":"date-time"}`,
		"small":  `{"type":"integer","format":"int32","minimum":-128,"maximum":127}`,
		"count":  `{"type":"integer","format":"int64","minimum":0,"maximum":4294967295}`,
		"ratio":  `{"type":"number","format":"float"}`,
		"raw":    `{}`,
		"bytes":  `{"type":"string","contentEncoding":"base64"}`,
		"any":    `{}`,
		"quoted": `{"type":"string"}`,
		"byId":   `{"type":["object","null"],"additionalProperties":{"type":"string"},"propertyNames":{"pattern":"^-?[0-9]+$"}}`,
		"pair":   `{"type":"array","minItems":2,"maxItems":2,"items":{"type":"integer","format":"int64"}}`,
		"author": `{"anyOf":[{"$ref":"#/components/schemas/author"},{"type":"null"}]}`,
		"editor": `{"$ref":"#/components/schemas/author"}`,
		"Plain":  `{"type":"string"}`,
		"sub":    `{"type":"object","properties":{"X":{"type":"boolean"}},"required":["X"],"additionalProperties":false}`,
		"level":  `{"type":"string","enum":["a","b"]}`,
		"opt":    `{"type":["string","null"],"enum":["x","y",null]}`,
		"extra":  `{"type":"object","additionalProperties":{"type":"string"}}`,
		"inline": `{"type":"string"}`,
		"maybe":  `{"type":"string"}`,
	}
	for name, w := range want {
		if got := string(note.Properties[name]); got != w {
			t.Errorf("noteOut.%s:\n got  %s\n want %s", name, got, w)
		}
	}
	for name := range note.Properties {
		if _, ok := want[name]; !ok {
			t.Errorf("noteOut has a property %q the encoder does not write", name)
		}
	}
	wantRequired := `["id","text","meta","at","small","count","ratio","raw","bytes","any","quoted","byId","pair","author","Plain","sub","level","opt","inline"]`
	if got := marshal(t, note.Required); got != wantRequired {
		t.Errorf("required:\n got  %s\n want %s", got, wantRequired)
	}
}

type genericPage[T any] struct {
	Items []T `json:"items"`
}

func TestSchemasNamesComponents(t *testing.T) {
	s := NewSchemas()
	type author struct { // another author than the package's
		Nick string `json:"nick"`
	}
	refs := []string{
		marshal(t, s.Of(reflect.TypeFor[genericPage[noteOut]]())),
		marshal(t, s.Of(reflect.TypeFor[author]())),
		marshal(t, s.Of(reflect.TypeFor[*pageOut]())),
	}
	want := []string{
		`{"$ref":"#/components/schemas/genericPageNoteOut"}`,
		`{"$ref":"#/components/schemas/author2"}`,
		`{"$ref":"#/components/schemas/pageOut"}`,
	}
	for i := range refs {
		if refs[i] != want[i] {
			t.Errorf("ref %d: %s, want %s", i, refs[i], want[i])
		}
	}
	// An input and an answer of one type share a component when they read
	// the same, and get one each when not.
	type same struct {
		A string `json:"a"`
	}
	type differs struct {
		A *string `json:"a"`
	}
	type in struct {
		S same    `json:"s"`
		D differs `json:"d"`
	}
	s.Of(reflect.TypeFor[same]())
	s.Of(reflect.TypeFor[differs]())
	s.Body(compile[in](t))
	c := s.Components()
	for _, name := range []string{"same", "differs", "differsInput", "in", "noteOut", "author", "author2"} {
		if c[name] == nil {
			t.Errorf("no component %q among %v", name, keys(c))
		}
	}
	if c["sameInput"] != nil {
		t.Errorf("same has two components though both uses read the same")
	}
	if got := marshal(t, c["differsInput"]); got != `{"type":"object","properties":{"a":{"type":["string","null"]}},"additionalProperties":false}` {
		t.Errorf("differsInput: %s", got)
	}
}

func keys(m map[string]*Schema) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestSchemasReportWhatTheyCannotDescribe(t *testing.T) {
	s := NewSchemas()
	type bad struct {
		C chan int `json:"c"`
	}
	if got := marshal(t, s.Of(reflect.TypeFor[bad]())); got != `{}` || s.Err() == nil {
		t.Errorf("Of(struct with a chan): %s, err %v; want {} and an error", got, s.Err())
	}
}
