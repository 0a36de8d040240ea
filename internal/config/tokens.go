package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxTokensFile bounds what auth.tokens_file may hold: a token list is
// small, and a path pointing at something huge must not stall a reload.
const maxTokensFile = 1 << 20

// readTokensFile fills FileTokens from auth.tokens_file, checking every
// token as auth.tokens is checked.
func (c *Config) readTokensFile() error {
	c.Auth.FileTokens = nil
	if c.Auth.TokensFile == "" {
		return nil
	}
	tokens, err := ReadTokens(c.Auth.TokensFile)
	if err != nil {
		return &Error{Key: "auth.tokens_file", Reason: err.Error()}
	}
	c.Auth.FileTokens = tokens
	return nil
}

// ReadTokens reads a file of bearer tokens: one a line, surrounding spaces
// ignored, blank lines and lines starting with # skipped. Each token must
// pass the auth.tokens checks; the error names the line that does not.
func ReadTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokensFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPath(err))
	}
	if len(data) > maxTokensFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: is it a token list?", path, maxTokensFile)
	}
	tokens := []string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxTokensFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := checkTokens([]string{line}); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		tokens = append(tokens, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return tokens, nil
}

// unwrapPath drops the *PathError's own copy of the path, which the
// message already names.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
