// Command icount-client sends N GET requests for a path on one keep-alive
// connection, one at a time, reading each whole answer.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	addr, path := os.Args[1], os.Args[2]
	n, _ := strconv.Atoi(os.Args[3])
	var c net.Conn
	var err error
	for i := 0; i < 600; i++ {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r := bufio.NewReader(c)
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: bench\r\nUser-Agent: icount\r\n\r\n")
	for i := 0; i < n; i++ {
		if _, err := c.Write(req); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			fmt.Fprintln(os.Stderr, "status", resp.StatusCode)
			os.Exit(1)
		}
	}
}
