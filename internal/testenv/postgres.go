// Package testenv holds fixtures shared by hotpath's integration tests: a
// throwaway PostgreSQL database per test and a TCP proxy that injects
// network faults between a client and a server.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the variable holding the DSN of a PostgreSQL server on
// which tests may create and drop databases.
const PostgresEnv = "HOTPATH_TEST_POSTGRES_DSN"

// PostgresDSN creates an empty database named hotpath_t_<random> on the
// server at $HOTPATH_TEST_POSTGRES_DSN, drops it when the test ends, and
// returns its DSN. Without the variable the test is skipped, or fails when
// CI=true, so CI cannot pass by silently testing less.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI must test against PostgreSQL", PostgresEnv)
		}
		Skip(t, "PostgreSQL tests", PostgresEnv+" is not set")
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error
	name := "hotpath_t_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", PostgresEnv, err)
	}
	defer conn.Close(ctx)
	// CREATE DATABASE takes no parameters; name is built from hex digits only.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop database %s: connect: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// FORCE ends sessions a test left behind, such as a pool it did not close.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return withDatabase(t, admin, name)
}

// withDatabase returns dsn pointing at database name, for both the URL and
// the keyword=value forms.
func withDatabase(t testing.TB, dsn, name string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse %s: %v", PostgresEnv, err)
		}
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name // a later keyword overrides an earlier one
}

// ReplaceHost returns dsn with its host:port replaced by addr, for pointing
// a client at a Proxy. Only the URL form is supported.
func ReplaceHost(t testing.TB, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("replace host in %q: need a postgres:// URL (err %v)", dsn, err)
	}
	u.Host = addr
	return u.String()
}

// TargetAddr returns the host:port a postgres:// URL points at.
func TargetAddr(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("host of %q: need a postgres:// URL (err %v)", dsn, err)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":5432"
	}
	return host
}
