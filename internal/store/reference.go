package store

import (
	"embed"
	"io/fs"
)

// The reference service's part of the store: its tables World and Fortune
// and the migrations that create, seed and count them. It lives here
// until the reference service moves out of internal/ (into cmd/hotpath);
// nothing in the generic code depends on it.

// referenceFiles are the reference service's migrations. Their versions
// (1, 2, 6) are the ones they had when every table shared one sequence.
//
//go:embed reference
var referenceFiles embed.FS

// ReferenceComponentName is the name the reference service's migrations
// are recorded under.
const ReferenceComponentName = "reference"

// ReferenceComponent is the reference service's tables: World (seeded
// with 10000 rows), Fortune (seeded with the 12 TechEmpower fortunes) and
// fortune_count.
func ReferenceComponent() Component {
	sub, err := fs.Sub(referenceFiles, "reference")
	if err != nil {
		panic(err) // fs.Sub fails only for an invalid path, and "reference" is valid
	}
	return Component{Name: ReferenceComponentName, FS: sub}
}

// withReference returns comps with the reference component added first
// unless it is there: OpenSQLite and OpenPostgres open the reference
// service's database, whatever else their caller names.
func withReference(comps []Component) []Component {
	for _, c := range comps {
		if c.Name == ReferenceComponentName {
			return comps
		}
	}
	return append([]Component{ReferenceComponent()}, comps...)
}
