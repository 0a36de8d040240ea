// Package tfb holds what every peer server shares with hotpath's own
// TechEmpower-style endpoints: the World and Fortune tables, the queries that
// read and update them, the parsing of the count parameter and the fortunes
// page. Peers differ only in their HTTP layer, so the comparison measures that.
package tfb

import (
	"math/rand/v2"
	"strconv"
)

// MaxWorldID is the highest World id; ids and randomNumbers are 1..MaxWorldID.
const MaxWorldID = 10000

// World is one row of the World table, encoded as {"id":N,"randomNumber":N}.
type World struct {
	ID           int32 `json:"id"`
	RandomNumber int32 `json:"randomNumber"`
}

// Fortune is one row of the Fortune table.
type Fortune struct {
	ID      int32  `json:"id"`
	Message string `json:"message"`
}

// RandomID returns a World id drawn uniformly from 1..MaxWorldID.
func RandomID() int32 { return rand.Int32N(MaxWorldID) + 1 }

// Count turns the raw queries/count parameter into the number of rows to
// read: missing, malformed or below 1 means 1, above 500 means 500.
func Count(raw string) int {
	n, err := strconv.Atoi(raw)
	switch {
	case err != nil || n < 1:
		return 1
	case n > 500:
		return 500
	}
	return n
}
