package typed

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestCompileInputRefusesWhatItCannotKeep: each error names the type, the
// field and what is wrong.
func TestCompileInputRefusesWhatItCannotKeep(t *testing.T) {
	cases := []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[int](), "an input is a struct type"},
		{reflect.TypeFor[struct {
			A string `json:"a" pattern:"(?i)x"`
		}](), `A: pattern:"(?i)x"`},
		{reflect.TypeFor[struct {
			A string `json:"a" pattern:"[a-"`
		}](), `A: pattern:"[a-"`},
		{reflect.TypeFor[struct {
			A int `json:"a" minimum:"5" maximum:"1"`
		}](), "minimum 5 is greater than maximum 1"},
		{reflect.TypeFor[struct {
			A string `json:"a" minLength:"5" maxLength:"1"`
		}](), "minLength 5 is greater than maxLength 1"},
		{reflect.TypeFor[struct {
			A int `json:"a" minLength:"1"`
		}](), `A: minLength:"1" does not apply to int`},
		{reflect.TypeFor[struct {
			A []int `json:"a" pattern:"x"`
		}](), `A: pattern:"x" does not apply to []int`},
		{reflect.TypeFor[struct {
			A string `json:"a" minItems:"1"`
		}](), `minItems:"1" does not apply to string`},
		{reflect.TypeFor[struct {
			A int8 `json:"a" maximum:"300"`
		}](), `maximum:"300": want an integer that fits int8`},
		{reflect.TypeFor[struct {
			A float64 `json:"a" enum:"1,2"`
		}](), "enum applies to strings and integers"},
		{reflect.TypeFor[struct {
			A chan int `json:"a"`
		}](), "chan int is not supported"},
		{reflect.TypeFor[struct {
			A any `json:"a"`
		}](), "interfaces are not supported"},
		{reflect.TypeFor[struct {
			A []byte `json:"a"`
		}](), "use a string"},
		{reflect.TypeFor[struct {
			A map[int]string `json:"a"`
		}](), "map keys must be strings"},
		{reflect.TypeFor[struct {
			A string `json:"x"`
			clash
		}](), `two members named "x"`},
		{reflect.TypeFor[struct {
			A string `json:"a" default:"x"`
		}](), "defaults apply to query and header parameters"},
		{reflect.TypeFor[struct {
			A int `json:"a,string"`
		}](), `",string" option is not supported`},
		{reflect.TypeFor[struct {
			A time.Time `json:"a" format:"date"`
		}](), "always date-time"},
		{reflect.TypeFor[struct {
			ID *int `path:"id"`
		}](), "a path parameter is always present"},
		{reflect.TypeFor[struct {
			ID int `path:"id" default:"1"`
		}](), "a path parameter is always present"},
		{reflect.TypeFor[struct {
			Q []string `query:"q"`
		}](), "a parameter is a string, a bool, an integer or a float"},
		{reflect.TypeFor[struct {
			Q int `query:"q" required:"true" default:"1"`
		}](), "a required parameter has no default"},
		{reflect.TypeFor[struct {
			Q int `query:"q" minimum:"5" default:"1"`
		}](), "breaks the field's own constraint: must be at least 5"},
		{reflect.TypeFor[struct {
			Q int `query:"q" default:"x"`
		}](), `default:"x": must be an integer from`},
		{reflect.TypeFor[struct {
			Q *int `query:"q" default:"1"`
		}](), "a pointer parameter is nil when absent"},
		{reflect.TypeFor[struct {
			A int `header:"X-A"`
			B int `header:"x-a"`
		}](), `both the header parameter "x-a"`},
		{reflect.TypeFor[struct {
			A address `json:"a"`
			B struct {
				Q int `query:"q"`
			} `json:"b"`
		}](), "parameters are fields of the input struct itself"},
		{reflect.TypeFor[struct {
			*address
		}](), "an embedded pointer is not supported"},
		{reflect.TypeFor[struct {
			A time.Duration `json:"a" required:"yes"`
		}](), `required:"yes": want true or false`},
		{reflect.TypeFor[struct {
			A **int `json:"a"`
		}](), "a pointer to a pointer"},
		{reflect.TypeFor[struct {
			A withUnmarshal `json:"a"`
		}](), "its own UnmarshalJSON"},
	}
	for _, c := range cases {
		_, err := CompileInput(c.typ)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CompileInput(%v): %v, want an error holding %q", c.typ, err, c.want)
		}
	}
}

// clash brings a second member "x" in, as vet forbids two tags in one struct.
type clash struct {
	B string `json:"x"`
}

type withUnmarshal struct{}

func (*withUnmarshal) UnmarshalJSON([]byte) error { return nil }

type embeddedPage struct {
	Limit int `query:"limit" default:"10"`
}

// TestCompileInputInlinesEmbeddedStructs: members and parameters of an
// embedded struct are the input's own, in declaration order.
func TestCompileInputInlinesEmbeddedStructs(t *testing.T) {
	type in struct {
		embeddedPage
		address
		Name string `json:"name"`
		ID   int    `path:"id"`
	}
	plan := compile[in](t)
	var names []string
	for _, m := range plan.body.members {
		names = append(names, m.name)
	}
	var params []string
	for _, p := range plan.Params() {
		params = append(params, p.In+":"+p.Name)
	}
	if got := strings.Join(names, ","); got != "city,zip,name" {
		t.Errorf("members %s, want city,zip,name", got)
	}
	if got := strings.Join(params, ","); got != "query:limit,path:id" {
		t.Errorf("params %s, want query:limit,path:id", got)
	}
	var v in
	if status, pe := run(t, plan, request("application/json", `{"city":"c","name":"n"}`, "", nil, map[string]string{"id": "4"}), &v); status != 200 || v.City != "c" || v.Name != "n" || v.ID != 4 || v.Limit != 10 {
		t.Errorf("status %d (%v), decoded %+v", status, pe, v)
	}
	if !plan.HasBody() || compile[embeddedPage](t).HasBody() {
		t.Errorf("HasBody: %v for a struct with members, %v for one of parameters only", plan.HasBody(), compile[embeddedPage](t).HasBody())
	}
}

func TestCompileInputReportsParams(t *testing.T) {
	in := compile[pageQuery](t)
	got := in.Params()
	if len(got) != 7 {
		t.Fatalf("%d params, want 7", len(got))
	}
	p := got[0]
	if p.Name != "limit" || p.In != "query" || p.Required || p.Description != "Page size." || string(p.Schema.Default) != "20" || p.Schema.Minimum != "1" || p.Schema.Maximum != "100" {
		t.Errorf("limit: %+v, schema %+v", p, p.Schema)
	}
	if p := got[4]; p.Name != "must" || !p.Required {
		t.Errorf("must: %+v, want required", p)
	}
	if p := got[5]; p.Name != "X-Trace" || p.In != "header" || p.Schema.Maximum != "65535" {
		t.Errorf("X-Trace: %+v %+v", p, p.Schema)
	}
}
