package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/hotpath/hotpath/internal/testenv"
)

// chromiumPath finds headless Chromium: skipped when absent, but under
// CI=true a missing browser fails the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI must run the browser tests (apt-get install -y chromium)")
	}
	testenv.Skip(t, "browser tests", "chromium is not installed")
	return ""
}

// browser starts a fresh headless Chromium and returns a tab context and
// a counter of JavaScript dialogs (alert, confirm, prompt) any page opened;
// each dialog is dismissed so that the page carries on.
func browser(t *testing.T) (context.Context, *atomic.Int32) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium puts its singleton socket in a folder of its own under
		// TMPDIR and never removes it; keep that inside the test's.
		chromedp.Env("TMPDIR=" + t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	tab, tcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(tab); err != nil {
		tcancel()
		acancel()
		cancel()
		t.Fatalf("start chromium: %v", err)
	}
	var dialogs atomic.Int32
	opened := chromedp.Events(tab, page.JavascriptDialogOpening)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, err := range opened {
			if err != nil {
				return // the tab is closing
			}
			dialogs.Add(1)
			_, _ = chromedp.Call(tab, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	t.Cleanup(func() {
		tcancel()
		acancel()
		cancel()
		<-done
	})
	return tab, &dialogs
}

// browse runs one value-returning browser action, failing the test on error.
func browse[T any](t *testing.T, tab context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(tab, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// browseDo runs browser steps, failing the test on error.
func browseDo(t *testing.T, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestBrowserShowsScriptPayloadsAsText submits script payloads through the
// real form in Chromium and checks the pages show them as text and no
// script ran.
func TestBrowserShowsScriptPayloadsAsText(t *testing.T) {
	tab, dialogs := browser(t)
	p := startProc(t)
	defer p.stop(t)
	db := openDirect(t, "sqlite", dbPath(t, p))
	count := fortuneCount(t, db)

	payloads := []string{
		`<script>window.__xss=1</script>`,
		`<img src=x onerror="window.__xss=1">`,
		`"><svg onload="window.__xss=1;alert(1)">`,
		`</textarea><script>window.__xss=1</script>`,
	}
	for _, payload := range payloads {
		browseDo(t, tab, "submit "+payload,
			chromedp.Navigate(p.app+"/fortunes/new"),
			chromedp.SetValue(chromedp.ID("message"), payload),
			chromedp.Click(chromedp.ID("submit")),
			chromedp.WaitVisible(chromedp.CSS("table")),
		)
		if loc := browse(t, tab, "location", chromedp.Location()); loc != p.app+"/fortunes" {
			t.Errorf("after submitting %q the browser is at %s, want %s/fortunes", payload, loc, p.app)
		}
		if table := browse(t, tab, "read the table", chromedp.Text(chromedp.CSS("table"))); !strings.Contains(table, payload) {
			t.Errorf("/fortunes does not show %q as text:\n%s", payload, table)
		}
		if xss := browse(t, tab, "read window.__xss", chromedp.Evaluate[string](`typeof window.__xss`)); xss != "undefined" {
			t.Errorf("payload %q ran: typeof window.__xss is %q", payload, xss)
		}
		count++
	}

	// A message too long re-renders the form with the payload in it.
	// (maxlength only limits typing; a value set by script still goes out.)
	long := `</textarea><img src=x onerror="window.__xss=1">` + strings.Repeat("x", 500)
	browseDo(t, tab, "submit a too long payload",
		chromedp.Navigate(p.app+"/fortunes/new"),
		chromedp.SetValue(chromedp.ID("message"), long),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("errors")),
	)
	shown := browse(t, tab, "read the textarea", chromedp.Value(chromedp.ID("message")))
	xss := browse(t, tab, "read window.__xss", chromedp.Evaluate[string](`typeof window.__xss`))
	if shown != long || xss != "undefined" {
		t.Errorf("422 form: textarea holds %q, typeof window.__xss %q; want the payload as text and no script", shown, xss)
	}
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
	if n := fortuneCount(t, db); n != count {
		t.Errorf("fortune count %d after the browser posts, want %d", n, count)
	}
}

// TestBrowserRefusesCrossSiteFormPost serves a page from a second origin
// that auto-submits a form to hotpath, the classic CSRF attack, with the
// victim's browser holding a CSRF cookie of its own.
func TestBrowserRefusesCrossSiteFormPost(t *testing.T) {
	tab, _ := browser(t)
	p := startProc(t)
	defer p.stop(t)
	db := openDirect(t, "sqlite", dbPath(t, p))
	count := fortuneCount(t, db)

	// 127.0.0.2 is another site to the browser; where it cannot be bound,
	// another port of 127.0.0.1 is still another origin.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	attack := fmt.Sprintf(`<!DOCTYPE html><html><body>
<form id="f" method="post" action="%s/fortunes">
<input name="message" value="forged by another site">
<input name="csrf_token" value="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA">
</form><script>document.getElementById("f").submit()</script></body></html>`, p.app)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, attack)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	browseDo(t, tab, "visit the form, then the attack page",
		// The victim has visited the form: the browser holds a CSRF cookie.
		chromedp.Navigate(p.app+"/fortunes/new"),
		chromedp.WaitVisible(chromedp.ID("message")),
		chromedp.Navigate("http://"+ln.Addr().String()+"/"),
	)
	browse(t, tab, "wait for the forged post's answer", chromedp.Poll[bool](
		`location.pathname === "/fortunes" && !!document.body && document.body.innerText.length > 0`,
		chromedp.WithPollingTimeout(20*time.Second)))
	if loc := browse(t, tab, "location", chromedp.Location()); loc != p.app+"/fortunes" {
		t.Fatalf("the attack page did not submit: browser at %s", loc)
	}
	body := browse(t, tab, "read the answer", chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(body, `"status":403`) || !strings.Contains(body, "cross-origin") {
		t.Errorf("the forged post was not refused as cross-origin with 403: %s", body)
	}
	if n := fortuneCount(t, db); n != count {
		t.Errorf("the forged post changed the fortune count from %d to %d", count, n)
	}
}
