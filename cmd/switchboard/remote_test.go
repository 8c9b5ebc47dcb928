package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/switchboard/switchboard/internal/calls"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/testnet"
	"github.com/switchboard/switchboard/web/browsertest"
)

const chromiumPath = "/usr/bin/chromium"

// remoteBrowser starts headless Chromium on another host, h, and returns
// a tab on it. When ca (PEM) is given, the browser trusts it as an operator's
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
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: browsertest.RTCProbe})
		return err
	})); err != nil {
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
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
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

// TestRemoteAgentOverHTTPS is the remote agent's end-to-end test. The
// switchboard serves HTTPS with a certificate from a test CA, runs its
// TURN relay and takes ICE-TCP on its media port; headless Chromium runs on
// another host (a network namespace at a non-loopback address) whose user
// trusts the CA. The page is a secure context, attaches its microphone,
// calls the echo bot and hears itself, measured in the page. Then again
// from a host whose firewall drops every UDP datagram: the audio still
// comes, straight to the media port over ICE-TCP; and from a host that
// may not reach the media port at all but over HTTPS and TURN, through
// the relay over TCP. The candidate pair that carried the audio says
// which way it went.
func TestRemoteAgentOverHTTPS(t *testing.T) {
	for _, tt := range []struct {
		name string
		// dropUDP drops the host's UDP; dropMediaTCP its TCP to the media
		// port too.
		dropUDP, dropMediaTCP bool
		// want: the local candidate's type, and its protocol (a relayed
		// candidate's: the one to the relay).
		wantType, wantProto string
	}{
		{"UDP open", false, false, "host", "udp"},
		{"UDP dropped", true, false, "tcp-host", "tcp"},
		{"UDP and the media port dropped", true, true, "relay", "tcp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := testnet.NewHost(t)
			port := freeUDPTCPPort(t)
			if tt.dropUDP {
				h.DropUDP(t)
			}
			if tt.dropMediaTCP {
				h.DropTCPPort(t, port)
			}
			ca := newTestCA(t)
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
			ca.issue(t, 2, certFile, keyFile, h.Peer.AsSlice())
			m := &Main{
				Config: Config{
					Addr: h.Peer.String() + ":0", AdminKey: testAdminKey, RingTimeout: time.Minute,
					TLS: TLSConfig{CertFile: certFile, KeyFile: keyFile},
					Media: MediaConfig{
						Grace: time.Minute, SharedPort: port, TCP: true, TCPPort: port,
						ICE: ICEConfig{TURNAddr: h.Peer.String() + ":0", CredentialTTL: time.Hour},
					},
				},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard,
				Store: store.NewMemory(),
			}
			if err := m.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close(context.Background()) })

			ctx := remoteBrowser(t, h, ca.pem)
			ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			alice := mint(t, "alice", calls.RoleAgent)
			if err := chromedp.Do(ctx, chromedp.Navigate("https://"+m.Addr+"/?token="+alice)); err != nil {
				t.Fatalf("open the console from host %s: %v", h.Addr, err)
			}
			waitPage(t, ctx, `document.body.dataset.synced === "true"`)
			if !evalPage[bool](t, ctx, `window.isSecureContext && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)`) {
				t.Fatal("over HTTPS the page is not a secure context with a microphone")
			}

			// The agent attaches the browser's audio and tests it: the
			// console calls the echo bot and listens for its microphone.
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#audio-connect"))); err != nil {
				t.Fatal(err)
			}
			waitPage(t, ctx, `document.body.dataset.audio === 'connected'`)
			if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#audio-test"))); err != nil {
				t.Fatal(err)
			}
			waitPage(t, ctx, `['ok', 'silent', 'no-echo', 'error'].includes(document.getElementById('audio-test-result').dataset.result)`)
			if r := evalPage[string](t, ctx, `document.getElementById('audio-test-result').dataset.result + ': ' + document.getElementById('audio-test-result').textContent`); !strings.HasPrefix(r, "ok") {
				t.Fatalf("the console's audio test says %q, want ok", r)
			}

			// The test's own measure: in a call with the echo bot the page
			// receives its beeps back.
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool()}}}
			req, _ := http.NewRequest(http.MethodPost, "https://"+m.Addr+"/api/calls", strings.NewReader(`{"participants":[{"communicationUserId":"8:echo123"}]}`))
			req.Header.Set("Authorization", "Bearer "+alice)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("call the echo bot: %s", resp.Status)
			}
			level := 0.0
			deadline := time.Now().Add(20 * time.Second)
			for level < remoteHeardLevel && time.Now().Before(deadline) {
				level = evalPage[float64](t, ctx, fmt.Sprintf(browsertest.ReceivedLevelJS, 1200))
			}
			if level < remoteHeardLevel {
				t.Fatalf("the page received level %.4f from the echo bot, want at least %.2f", level, remoteHeardLevel)
			}

			pair := evalPage[map[string]any](t, ctx, selectedPairJS)
			t.Logf("heard the echo at level %.3f over %v", level, pair)
			c := func(side, k string) string { s, _ := pair[side].(map[string]any)[k].(string); return s }
			typ, proto := c("local", "candidateType"), c("local", "protocol")
			if typ == "relay" {
				proto = c("local", "relayProtocol")
			}
			if proto == "tcp" && typ != "relay" {
				// An ICE-TCP active candidate is host, or peer-reflexive
				// when the server learnt its port from the connection.
				typ = "tcp-host"
			}
			if typ != tt.wantType || proto != tt.wantProto {
				t.Errorf("the audio took a %s candidate over %s (%v); want %s over %s", typ, proto, pair, tt.wantType, tt.wantProto)
			}
			if tt.wantType != "relay" && c("remote", "address") != net.JoinHostPort(h.Peer.String(), strconv.Itoa(int(port))) {
				t.Errorf("the audio came from %s, want the media port %s:%d", c("remote", "address"), h.Peer, port)
			}
		})
	}
}

// remoteHeardLevel is a received level that is sound: the echo bot
// returning the fake microphone's beeps is far above it.
const remoteHeardLevel = 0.01

// selectedPairJS describes the candidate pair that carries the page's
// newest peer connection, from getStats.
const selectedPairJS = `(async () => {
	const pc = window.__rtcProbe.pcs.at(-1);
	const all = [...(await pc.getStats()).values()];
	const byId = (id) => all.find((s) => s.id === id) || {};
	const transport = all.find((s) => s.type === 'transport') || {};
	const pair = byId(transport.selectedCandidatePairId);
	const pick = (c) => ({candidateType: c.candidateType || '', protocol: c.protocol || '', relayProtocol: c.relayProtocol || '', address: (c.address || '') + ':' + (c.port || '')});
	return {state: pair.state || '', local: pick(byId(pair.localCandidateId)), remote: pick(byId(pair.remoteCandidateId))};
})()`
