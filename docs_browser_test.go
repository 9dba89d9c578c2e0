package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// findChromium returns the path of a Chromium to drive: $CHROME_PATH,
// /usr/bin/chromium, or chromium on PATH. Without one the test is skipped,
// except on CI (CI=true), where a missing browser is a failure: CI
// installs it (.ci/docs.sh).
func findChromium(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CHROME_PATH"), "/usr/bin/chromium"}
	if p, err := exec.LookPath("chromium"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	const msg = "no Chromium found ($CHROME_PATH, /usr/bin/chromium, chromium on PATH): install Debian's chromium package"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newDocsTestServer serves the whole service on a fresh database, so
// that the page can be driven through register, authorize and try.
func newDocsTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newTestApp(t).handler)
	t.Cleanup(srv.Close)
	return srv
}

// TestDocsBrowser loads /docs in a headless Chromium as a person would:
// Swagger UI renders every operation of the document, "Execute" on
// POST /register/ answers a token, "Authorize" takes it, and "Execute"
// sends the next request with it. No request may leave the
// test server, and the page must raise no error (a Content-Security-Policy
// violation included). A screenshot is kept as a test artefact.
func TestDocsBrowser(t *testing.T) {
	chromium := findChromium(t)
	srv := newDocsTestServer(t)
	base, _ := url.Parse(srv.URL)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1024),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithLogf(t.Logf))
	defer cancelTab()

	// Record every URL the page requests and every console message.
	var mu sync.Mutex
	var requested, problems []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requested = append(requested, ev.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start the browser: %v", err)
	}
	consoleCtx, stopConsole := context.WithCancel(ctx)
	consoleDone := make(chan struct{})
	messages := chromedp.Console(consoleCtx)
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if isPageProblem(m) {
				mu.Lock()
				problems = append(problems, m.String())
				mu.Unlock()
			}
		}
	}()

	// The page renders every operation.
	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(".opblock")),
	)
	if err != nil {
		t.Fatalf("load /docs: %v", err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".opblock")].map(b =>
		b.querySelector(".opblock-summary-method").textContent + " " +
		b.querySelector("[data-path]").dataset.path)`))
	if err != nil {
		t.Fatalf("read the operations: %v", err)
	}
	slices.Sort(shown)
	if want := openAPIOperations(t); !slices.Equal(shown, want) {
		t.Errorf("operations on the page:\n got %q\nwant %q", shown, want)
	}

	// Register with the example body, authorize with the token answered,
	// then try GET /request-count/ with it.
	const register = `.opblock:has([data-path="/register/"])`
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(register+" .opblock-summary-control")),
		chromedp.Click(chromedp.CSS(register+" button.execute")),
		chromedp.WaitVisible(chromedp.CSS(register+" .live-responses-table")),
	)
	if err != nil {
		t.Fatalf("execute POST /register/: %v", err)
	}
	answer, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`document.querySelector('`+register+` .live-responses-table .response-col_description pre').textContent`))
	if err != nil {
		t.Fatalf("read the answer to POST /register/: %v", err)
	}
	var registered struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(answer), &registered); err != nil || registered.AccessToken == "" {
		t.Fatalf("POST /register/ from the page answered %q, want a token", answer)
	}

	const count = `.opblock:has([data-path="/request-count/"])`
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("button.btn.authorize")),
		chromedp.SendKeys(chromedp.CSS("#auth-bearer-value"), registered.AccessToken),
		chromedp.Click(chromedp.CSS(`button[aria-label="Apply credentials"]`)),
		chromedp.Click(chromedp.CSS("button.btn-done")),
		chromedp.Click(chromedp.CSS(count+" .opblock-summary-control")),
		chromedp.Click(chromedp.CSS(count+" button.execute")),
		chromedp.WaitVisible(chromedp.CSS(count+" .live-responses-table")),
	)
	if err != nil {
		t.Fatalf("authorize and execute GET /request-count/: %v", err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(count+" .live-responses-table .response .response-col_status")))
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	if got, want := strings.TrimSpace(status), "200"; got != want {
		t.Errorf("GET /request-count/ from the page: status %s, want %s (was the token sent?)", got, want)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("TEST_ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(dir, "docs.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of /docs: %s", shotPath)

	stopConsole()
	<-consoleDone
	mu.Lock()
	defer mu.Unlock()
	if len(requested) == 0 {
		t.Error("saw no request at all: the network events were not recorded")
	}
	for _, raw := range requested {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "data" && u.Host != base.Host) {
			t.Errorf("the page requested %s, not on the test server %s", raw, base.Host)
		}
	}
	for _, p := range problems {
		t.Errorf("page console: %s", p)
	}
}

// isPageProblem reports whether a console message shows the page broken:
// an uncaught exception, a Content-Security-Policy violation, a file of
// the page that failed to load, or any other error. An API answer of 4xx
// or 5xx to "Execute" is logged by the browser too, but it is the API
// speaking, not a broken page.
func isPageProblem(m chromedp.ConsoleMessage) bool {
	if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
		return true
	}
	if m.Type != chromedp.ConsoleError {
		return false
	}
	if strings.HasPrefix(m.Text, "Failed to load resource") {
		u, err := url.Parse(m.URL)
		return err != nil || u.Path == "/openapi.json" || u.Path == "/docs" || strings.HasPrefix(u.Path, "/docs/")
	}
	return true
}
