package store

import (
	"regexp"
	"strings"
	"testing"
)

func TestSQLiteParamsRewritesOnlyPlaceholderTokens(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT id FROM t WHERE id = $1`, `SELECT id FROM t WHERE id = ?1`},
		{`SELECT 1`, `SELECT 1`},
		{`VALUES ($1, $2, $10, $11)`, `VALUES (?1, ?2, ?10, ?11)`},
		{`WHERE a=$1 AND b<>$2 OR c<=$3 AND d||$4`, `WHERE a=?1 AND b<>?2 OR c<=?3 AND d||?4`},
		{`SELECT ($1),-$2,+$3,$4*$5`, `SELECT (?1),-?2,+?3,?4*?5`},
		{`IN ($1,$2)`, `IN (?1,?2)`},
		{"SELECT $1\n", "SELECT ?1\n"},
		// literals, with '' escapes
		{`SELECT '$1', $1`, `SELECT '$1', ?1`},
		{`SELECT 'it''s $1', $2`, `SELECT 'it''s $1', ?2`},
		{`SELECT '''$1''', $2`, `SELECT '''$1''', ?2`},
		{`SELECT '', $1, ''`, `SELECT '', ?1, ''`},
		{`SELECT 'unterminated $1`, `SELECT 'unterminated $1`},
		// quoted identifiers of every kind SQLite accepts
		{`SELECT "col$1", $1`, `SELECT "col$1", ?1`},
		{`SELECT "a""$1", $2`, `SELECT "a""$1", ?2`},
		{"SELECT `x$1`, $1", "SELECT `x$1`, ?1"},
		{`SELECT [x $1], $1`, `SELECT [x $1], ?1`},
		// comments of both kinds
		{"SELECT $1 -- not $2\n, $3", "SELECT ?1 -- not $2\n, ?3"},
		{"SELECT 1 -- $1 to the end", "SELECT 1 -- $1 to the end"},
		{`SELECT /* $1 */ $2`, `SELECT /* $1 */ ?2`},
		{`SELECT /* /* $1 */ $2 */`, `SELECT /* /* $1 */ ?2 */`}, // SQLite does not nest comments
		{`SELECT /* unterminated $1`, `SELECT /* unterminated $1`},
		{`SELECT 5-$1, 5 - -$2`, `SELECT 5-?1, 5 - -?2`},
		{`SELECT 4/$1`, `SELECT 4/?1`},
		// not placeholders
		{`SELECT a$1 FROM t`, `SELECT a$1 FROM t`},
		{`SELECT $a, $$, $`, `SELECT $a, $$, $`},
		{`SELECT é$1`, `SELECT é$1`},
		{`SELECT 'a'$1`, `SELECT 'a'?1`},
	} {
		if got := sqliteParams(c.in); got != c.want {
			t.Errorf("sqliteParams(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestSQLiteParamsKeepsTextWithoutDollar(t *testing.T) {
	q := `SELECT id FROM t WHERE id = ?1`
	if got := sqliteParams(q); got != q {
		t.Errorf("sqliteParams(%q) = %q", q, got)
	}
	if n := testing.AllocsPerRun(100, func() { sqliteParams(q) }); n != 0 {
		t.Errorf("sqliteParams of a text without '$' allocates %v times, want 0", n)
	}
}

// quoted matches, at the start of a text, one run that sqliteParams must
// leave alone: a literal, a quoted identifier or a comment. It is written
// independently of the scanner, as a regular expression over SQLite's
// token rules, so the fuzz target compares two implementations.
var quoted = regexp.MustCompile("^(?s:'[^']*'?|\"[^\"]*\"?|`[^`]*`?|\\[[^\\]]*\\]?|--[^\\n]*\\n?|/\\*.*?(?:\\*/|$))")

// protected marks the bytes of in that lie inside quoted runs.
func protected(in string) []bool {
	mask := make([]bool, len(in))
	for i := 0; i < len(in); {
		if m := quoted.FindStringIndex(in[i:]); m != nil && m[1] > 0 {
			for j := i; j < i+m[1]; j++ {
				mask[j] = true
			}
			i += m[1]
			continue
		}
		i++
	}
	return mask
}

func FuzzSQLiteParams(f *testing.F) {
	for _, s := range []string{
		`SELECT id, randomNumber FROM World WHERE id = $1`,
		`INSERT INTO t (a, b) VALUES ($1, 'it''s $2') -- $3`,
		"SELECT \"$1\", `$2`, [$3], /* $4 */ $5, $10",
		`SELECT 'a'$1, a$1, $$, $a`,
		"UPDATE t SET a = $1 /* unterminated $2",
		"'", "$", "$1", "--$1", "/*", "[",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := sqliteParams(in)
		if len(out) != len(in) {
			t.Fatalf("sqliteParams(%q) = %q: length changed", in, out)
		}
		mask := protected(in)
		for i := range len(in) {
			placeholder := !mask[i] && in[i] == '$' && i+1 < len(in) && isDigit(in[i+1]) && (i == 0 || !isIdentByte(in[i-1]))
			switch {
			case in[i] != out[i] && mask[i]:
				t.Fatalf("sqliteParams(%q) = %q: byte %d changed inside a literal, identifier or comment", in, out, i)
			case in[i] != out[i] && !placeholder:
				t.Fatalf("sqliteParams(%q) = %q: byte %d %q became %q; only the $ of a placeholder may become ?", in, out, i, in[i], out[i])
			case placeholder && out[i] != '?':
				t.Fatalf("sqliteParams(%q) = %q: the placeholder at byte %d was left as is", in, out, i)
			}
		}
		if !strings.Contains(in, "?") {
			if back := strings.ReplaceAll(out, "?", "$"); back != in {
				t.Fatalf("sqliteParams(%q) = %q, which maps back to %q", in, out, back)
			}
		}
	})
}
