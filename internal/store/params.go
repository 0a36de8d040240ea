package store

import "strings"

// SQL text is written once for both drivers, with PostgreSQL's $1, $2 ...
// placeholders; SQLite reads the same numbered parameters as ?1, ?2 ....
// sqliteParams turns one into the other. It is a scanner, not a text
// replace: a $1 inside a string literal, a quoted identifier or a comment
// is text, and rewriting it would change what is stored or which column is
// meant. The rewritten text is cached per statement (see stmtCache), so
// the scan runs once per distinct statement, not once per call.

// sqliteParams returns q with every $<digits> placeholder token turned into
// ?<digits>. Only the '$' byte changes. Left alone: '...' literals (a
// doubled quote is a quote inside one), "..." `...` and [...] identifiers,
// -- comments to the end of the line, /* */ comments (not nested, as in
// SQLite), and a '$' that continues an identifier (SQLite and PostgreSQL
// both allow a$1 as a name).
func sqliteParams(q string) string {
	if strings.IndexByte(q, '$') < 0 {
		return q // most statements without parameters: no copy
	}
	var b []byte // allocated at the first rewrite
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(q, i, c)
		case c == '[':
			i = skipQuoted(q, i, ']')
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			if n := strings.IndexByte(q[i:], '\n'); n >= 0 {
				i += n + 1
			} else {
				i = len(q)
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			if n := strings.Index(q[i+2:], "*/"); n >= 0 {
				i += 2 + n + 2
			} else {
				i = len(q)
			}
		case c == '$' && i+1 < len(q) && isDigit(q[i+1]) && (i == 0 || !isIdentByte(q[i-1])):
			if b == nil {
				b = []byte(q)
			}
			b[i] = '?'
			i += 2
			for i < len(q) && isDigit(q[i]) {
				i++
			}
		case isIdentByte(c):
			// A whole word at once, so a '$' inside it (a$1) is never seen
			// as the start of a placeholder.
			for i < len(q) && isIdentByte(q[i]) {
				i++
			}
		default:
			i++
		}
	}
	if b == nil {
		return q
	}
	return string(b)
}

// skipQuoted returns the index just past the quoted run that starts at
// q[open] and ends at the byte end. A doubled end byte (a quote inside a
// literal) is the run closing and at once reopening, so it needs no case
// of its own. An unterminated run extends to the end of q.
func skipQuoted(q string, open int, end byte) int {
	if n := strings.IndexByte(q[open+1:], end); n >= 0 {
		return open + 1 + n + 1
	}
	return len(q)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isIdentByte reports whether c can continue an unquoted identifier or a
// number: letters, digits, '_', '$' and every byte of a non-ASCII character.
func isIdentByte(c byte) bool {
	return c >= 0x80 || c == '_' || c == '$' || isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
