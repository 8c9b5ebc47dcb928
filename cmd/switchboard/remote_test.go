package main

import (
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/testnet"
)

const chromiumPath = "/usr/bin/chromium"

// remoteBrowser starts headless Chromium on another host, h, and returns
// a tab on it. When ca is given, the browser trusts it as an operator's
// agents would after installing an internal CA's root: through the NSS
// database of the browser's user (libnss3-tools' certutil). The browser's
// fake microphone beeps and is granted without asking.
func remoteBrowser(t *testing.T, h *testnet.Host, ca []byte) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("skipping: headless Chromium is not at %s (apt-get install -y chromium)", chromiumPath)
	}
	home := t.TempDir()
	if ca != nil {
		trustCA(t, home, ca)
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		// Chromium runs inside the host's namespace; the DevTools pipe
		// (file descriptors 3 and 4) passes through `ip netns exec`.
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			wrapped := h.Command(context.Background(), chromiumPath, cmd.Args[1:]...)
			cmd.Path, cmd.Args = wrapped.Path, wrapped.Args
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}),
		chromedp.Env("HOME="+home),
		chromedp.UserDataDir(filepath.Join(home, "profile")),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		// Media goes to the switchboard, not to mDNS names.
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium on host %s: %v", h.Addr, err)
	}
	return ctx
}

// trustCA puts ca in the NSS database Chromium reads for the user whose
// home is home.
func trustCA(t *testing.T, home string, ca []byte) {
	t.Helper()
	if _, err := exec.LookPath("certutil"); err != nil {
		t.Skip("skipping: NSS's certutil is not installed (apt-get install -y libnss3-tools)")
	}
	db := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(db, 0o700); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(home, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + db, "--empty-password"},
		{"-A", "-d", "sql:" + db, "-n", "switchboard test CA", "-t", "C,,", "-i", caFile},
	} {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v: %s", args, err, out)
		}
	}
}

// TestRemoteConsoleOverPlainHTTP: a browser on another host opens the
// console over plain HTTP at the switchboard's address. The page loads and
// its events go live, but it is not a secure context, so the browser gives
// it no microphone: the reason remote agents need HTTPS.
func TestRemoteConsoleOverPlainHTTP(t *testing.T) {
	h := testnet.NewHost(t)
	m := &Main{
		Config: Config{Addr: h.Peer.String() + ":0", AdminKey: testAdminKey, RingTimeout: time.Minute},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
		Store: store.NewMemory(),
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	ctx := remoteBrowser(t, h, nil)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+m.Addr+"/?token="+mint(t, "alice", calls.RoleAgent))); err != nil {
		t.Fatalf("open the console from host %s: %v", h.Addr, err)
	}
	waitPage(t, ctx, `document.body.dataset.synced === "true"`)
	secure := evalPage[bool](t, ctx, `window.isSecureContext`)
	hasMedia := evalPage[bool](t, ctx, `!!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)`)
	if secure || hasMedia {
		t.Fatalf("over plain HTTP from another host: isSecureContext %v, getUserMedia %v; want neither", secure, hasMedia)
	}
}

// waitPage polls expr in the page until it is true.
func waitPage(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s: %v", expr, err)
	}
}

// evalPage evaluates expr in the page, awaiting it when it is a promise.
func evalPage[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}
