package typed

import (
	"regexp"
	"strconv"
	"unicode/utf8"
)

// rules are the constraints one value carries, read from its field's tags
// at compile time. The length, pattern, bound and enum rules sit on the
// scalar they apply to; the item counts on the slice.
type rules struct {
	minLength, maxLength int // code points; -1: no bound
	pattern              *regexp.Regexp
	patternText          string // the tag as written, for the schema and details
	min, max             bound
	enumStrings          []string
	enumInts             []int64
	enumUints            []uint64
	enumText             string // "a, b, c"
	minItems, maxItems   int    // -1: no bound
	format               string

	// Details, composed once so that a violation formats nothing.
	lengthDetail, rangeDetail, patternDetail, enumDetail string
	maxLengthDetail, tooFewDetail, tooManyDetail         string
}

// bound is a minimum or a maximum, kept in the representation of the
// value's kind.
type bound struct {
	set  bool
	i    int64
	u    uint64
	f    float64
	text string // as a JSON number
}

func newRules() *rules {
	return &rules{minLength: -1, maxLength: -1, minItems: -1, maxItems: -1}
}

// finish composes the details once every tag is read.
func (r *rules) finish(k kind) {
	switch {
	case r.minLength >= 0 && r.maxLength >= 0:
		r.lengthDetail = "must be from " + strconv.Itoa(r.minLength) + " to " + strconv.Itoa(r.maxLength) + " characters"
	case r.minLength >= 0:
		r.lengthDetail = "must be at least " + strconv.Itoa(r.minLength) + " characters"
	case r.maxLength >= 0:
		r.lengthDetail = "must be at most " + strconv.Itoa(r.maxLength) + " characters"
	}
	r.maxLengthDetail = "must be at most " + strconv.Itoa(r.maxLength) + " characters"
	r.patternDetail = "must match the pattern " + r.patternText
	r.enumDetail = "must be one of " + r.enumText
	r.rangeDetail = rangeDetail(k, r.min, r.max)
	r.tooFewDetail = "must have at least " + strconv.Itoa(r.minItems) + " items"
	r.tooManyDetail = "must have at most " + strconv.Itoa(r.maxItems) + " items"
}

// rangeDetail says which numbers are wanted.
func rangeDetail(k kind, min, max bound) string {
	switch {
	case min.set && max.set && (k == kindInt || k == kindUint):
		return "must be an integer from " + min.text + " to " + max.text
	case min.set && max.set:
		return "must be from " + min.text + " to " + max.text
	case min.set:
		return "must be at least " + min.text
	case max.set:
		return "must be at most " + max.text
	}
	return ""
}

// checkString returns what is wrong with s, "" when nothing is.
func (r *rules) checkString(s string) string {
	if r.minLength >= 0 || r.maxLength >= 0 {
		n := utf8.RuneCountInString(s)
		if n < r.minLength {
			if r.minLength == 1 {
				return "must not be empty"
			}
			return r.lengthDetail
		}
		if r.maxLength >= 0 && n > r.maxLength {
			if r.minLength <= 1 {
				return r.maxLengthDetail
			}
			return r.lengthDetail
		}
	}
	if r.enumStrings != nil {
		found := false
		for _, e := range r.enumStrings {
			if e == s {
				found = true
				break
			}
		}
		if !found {
			return r.enumDetail
		}
	}
	if r.pattern != nil && !r.pattern.MatchString(s) {
		return r.patternDetail
	}
	return ""
}

func (r *rules) checkInt(v int64) string {
	if r.min.set && v < r.min.i || r.max.set && v > r.max.i {
		return r.rangeDetail
	}
	if r.enumInts != nil {
		for _, e := range r.enumInts {
			if e == v {
				return ""
			}
		}
		return r.enumDetail
	}
	return ""
}

func (r *rules) checkUint(v uint64) string {
	if r.min.set && v < r.min.u || r.max.set && v > r.max.u {
		return r.rangeDetail
	}
	if r.enumUints != nil {
		for _, e := range r.enumUints {
			if e == v {
				return ""
			}
		}
		return r.enumDetail
	}
	return ""
}

func (r *rules) checkFloat(v float64) string {
	if r.min.set && v < r.min.f || r.max.set && v > r.max.f {
		return r.rangeDetail
	}
	return ""
}

// checkItems checks the length of a JSON array (not of null).
func (r *rules) checkItems(n int) string {
	if r.minItems >= 0 && n < r.minItems {
		return r.tooFewDetail
	}
	if r.maxItems >= 0 && n > r.maxItems {
		return r.tooManyDetail
	}
	return ""
}
