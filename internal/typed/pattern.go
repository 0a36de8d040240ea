package typed

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ecmaSpace is what \s matches in ECMA-262: RE2's \s is ASCII only, so a
// pattern that says \s is given this class, and both sides agree.
const ecmaSpace = `\t\n\x{0B}\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}`

// ecmaDot is what . matches in ECMA-262 without the s flag: any character
// but a line terminator. RE2's . excludes only \n.
const ecmaDot = `[^\n\r\x{2028}\x{2029}]`

// compilePattern compiles a pattern tag, written for JSON Schema (ECMA-262),
// into a Go regexp that accepts the same strings. It refuses what the two
// dialects read differently or only one of them knows (flags, \A, \z, \p,
// POSIX classes...), translates \uXXXX (ECMA's spelling of a code point),
// and gives . and \s their ECMA meaning.
func compilePattern(src string) (*regexp.Regexp, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\\':
			if i+1 >= len(src) {
				return nil, errors.New("it ends with a lone backslash")
			}
			e := src[i+1]
			switch e {
			case 'u':
				if i+6 > len(src) || !isHex4(src[i+2:i+6]) {
					return nil, errors.New(`\u must be followed by four hex digits`)
				}
				b.WriteString(`\x{` + src[i+2:i+6] + `}`)
				i += 5
				continue
			case 's':
				if inClass {
					b.WriteString(ecmaSpace)
				} else {
					b.WriteString("[" + ecmaSpace + "]")
				}
				i++
				continue
			case 'S':
				if inClass {
					return nil, errors.New(`\S inside a character class reads differently in ECMA-262 and RE2`)
				}
				b.WriteString("[^" + ecmaSpace + "]")
				i++
				continue
			case 'A', 'z', 'Q', 'E', 'p', 'P', 'C':
				return nil, fmt.Errorf(`\%c is not in the common subset of ECMA-262 and RE2`, e)
			case 'x':
				if i+2 < len(src) && src[i+2] == '{' {
					return nil, errors.New(`\x{...} is RE2 only: write \uXXXX`)
				}
			}
			b.WriteByte(c)
			b.WriteByte(e)
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
			if c == '[' && i+1 < len(src) && src[i+1] == ':' {
				return nil, errors.New("POSIX classes ([:alpha:]) are RE2 only")
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			// A ] right after [ or [^ is a literal in RE2 and an empty
			// class in ECMA-262.
			j := i + 1
			if j < len(src) && src[j] == '^' {
				b.WriteByte('^')
				j++
			}
			if j < len(src) && src[j] == ']' {
				return nil, errors.New("[] and [^] read differently in ECMA-262 and RE2")
			}
			i = j - 1
		case c == '.':
			b.WriteString(ecmaDot)
		case c == '(' && i+1 < len(src) && src[i+1] == '?':
			if i+2 < len(src) && src[i+2] == ':' {
				b.WriteString("(?:")
				i += 2
				continue
			}
			return nil, errors.New("(? groups other than (?: are not in the common subset of ECMA-262 and RE2")
		default:
			b.WriteByte(c)
		}
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, err
	}
	return re, nil
}

func isHex4(s string) bool {
	for i := range 4 {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
