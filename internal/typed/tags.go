package typed

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// constraintTags are the tags that constrain a value, named as the JSON
// Schema keywords they become.
var constraintTags = [...]string{"minLength", "maxLength", "pattern", "format", "minimum", "maximum", "enum", "minItems", "maxItems"}

// tagSet is the constraint tags of one field, each to be taken by the
// node it fits; one left over is a tag on a type it does not fit.
type tagSet struct {
	where  string
	values map[string]string
}

func readTags(tag reflect.StructTag, where string) (*tagSet, error) {
	ts := &tagSet{where: where, values: make(map[string]string)}
	for _, k := range constraintTags {
		if v, ok := tag.Lookup(k); ok {
			ts.values[k] = v
		}
	}
	return ts, nil
}

// take returns and uses up one tag.
func (ts *tagSet) take(k string) (string, bool) {
	v, ok := ts.values[k]
	delete(ts.values, k)
	return v, ok
}

// allUsed reports a tag no node of t took.
func (ts *tagSet) allUsed(t reflect.Type) error {
	for _, k := range constraintTags {
		if v, ok := ts.values[k]; ok {
			return fmt.Errorf("%s: %s:%q does not apply to %s", ts.where, k, v, t)
		}
	}
	return nil
}

func (ts *tagSet) errorf(k, v, format string, args ...any) error {
	return fmt.Errorf("%s: %s:%q: %s", ts.where, k, v, fmt.Sprintf(format, args...))
}

// items gives a slice node its item counts.
func (ts *tagSet) items(n *node, _ string) error {
	minV, hasMin := ts.take("minItems")
	maxV, hasMax := ts.take("maxItems")
	if !hasMin && !hasMax {
		return nil
	}
	r := newRules()
	var err error
	if hasMin {
		if r.minItems, err = count(minV); err != nil {
			return ts.errorf("minItems", minV, "%v", err)
		}
	}
	if hasMax {
		if r.maxItems, err = count(maxV); err != nil {
			return ts.errorf("maxItems", maxV, "%v", err)
		}
	}
	if hasMin && hasMax && r.minItems > r.maxItems {
		return fmt.Errorf("%s: minItems %d is greater than maxItems %d", ts.where, r.minItems, r.maxItems)
	}
	r.finish(n.kind)
	n.rules = r
	return nil
}

// scalar gives a scalar node the tags that fit its kind.
func (ts *tagSet) scalar(n *node, _ string) error {
	r := newRules()
	used := false
	if v, ok := ts.take("format"); ok {
		switch n.kind {
		case kindString, kindInt, kindUint, kindFloat, kindText:
			r.format, used = v, true
		default:
			ts.values["format"] = v // left for allUsed to report
		}
	}
	switch n.kind {
	case kindString, kindText:
		u, err := ts.stringRules(r)
		if err != nil {
			return err
		}
		used = used || u
	case kindInt, kindUint, kindFloat:
		u, err := ts.numberRules(n, r)
		if err != nil {
			return err
		}
		used = used || u
	}
	if used {
		r.finish(n.kind)
		n.rules = r
	}
	return nil
}

func (ts *tagSet) stringRules(r *rules) (bool, error) {
	used := false
	var err error
	if v, ok := ts.take("minLength"); ok {
		if r.minLength, err = count(v); err != nil {
			return false, ts.errorf("minLength", v, "%v", err)
		}
		used = true
	}
	if v, ok := ts.take("maxLength"); ok {
		if r.maxLength, err = count(v); err != nil {
			return false, ts.errorf("maxLength", v, "%v", err)
		}
		used = true
	}
	if r.minLength >= 0 && r.maxLength >= 0 && r.minLength > r.maxLength {
		return false, fmt.Errorf("%s: minLength %d is greater than maxLength %d", ts.where, r.minLength, r.maxLength)
	}
	if v, ok := ts.take("pattern"); ok {
		re, err := compilePattern(v)
		if err != nil {
			return false, ts.errorf("pattern", v, "%v", err)
		}
		r.pattern, r.patternText, used = re, v, true
	}
	if v, ok := ts.take("enum"); ok {
		r.enumStrings = strings.Split(v, ",")
		for _, e := range r.enumStrings {
			if e == "" {
				return false, ts.errorf("enum", v, "an empty value")
			}
		}
		r.enumText, used = strings.Join(r.enumStrings, ", "), true
	}
	return used, nil
}

func (ts *tagSet) numberRules(n *node, r *rules) (bool, error) {
	used := false
	for _, k := range [...]string{"minimum", "maximum"} {
		v, ok := ts.take(k)
		if !ok {
			continue
		}
		b, err := parseBound(n, v)
		if err != nil {
			return false, ts.errorf(k, v, "%v", err)
		}
		if k == "minimum" {
			r.min = b
		} else {
			r.max = b
		}
		used = true
	}
	if r.min.set && r.max.set {
		lower := n.kind == kindInt && r.min.i > r.max.i || n.kind == kindUint && r.min.u > r.max.u || n.kind == kindFloat && r.min.f > r.max.f
		if lower {
			return false, fmt.Errorf("%s: minimum %s is greater than maximum %s", ts.where, r.min.text, r.max.text)
		}
	}
	if v, ok := ts.take("enum"); ok {
		if n.kind == kindFloat {
			return false, ts.errorf("enum", v, "enum applies to strings and integers")
		}
		parts := strings.Split(v, ",")
		for _, p := range parts {
			b, err := parseBound(n, p)
			if err != nil {
				return false, ts.errorf("enum", v, "%v", err)
			}
			if n.kind == kindInt {
				r.enumInts = append(r.enumInts, b.i)
			} else {
				r.enumUints = append(r.enumUints, b.u)
			}
		}
		r.enumText, used = strings.Join(parts, ", "), true
	}
	return used, nil
}

// count reads a length or an item count.
func count(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a whole number, 0 or more")
	}
	return n, nil
}

// parseBound reads a number that must fit the node's Go type.
func parseBound(n *node, v string) (bound, error) {
	switch n.kind {
	case kindInt:
		i, err := strconv.ParseInt(v, 10, n.bits)
		if err != nil {
			return bound{}, fmt.Errorf("want an integer that fits %s", n.typ)
		}
		return bound{set: true, i: i, text: strconv.FormatInt(i, 10)}, nil
	case kindUint:
		u, err := strconv.ParseUint(v, 10, n.bits)
		if err != nil {
			return bound{}, fmt.Errorf("want an integer that fits %s", n.typ)
		}
		return bound{set: true, u: u, text: strconv.FormatUint(u, 10)}, nil
	default:
		f, err := strconv.ParseFloat(v, n.bits)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return bound{}, fmt.Errorf("want a number that fits %s", n.typ)
		}
		return bound{set: true, f: f, text: strconv.FormatFloat(f, 'g', -1, n.bits)}, nil
	}
}
