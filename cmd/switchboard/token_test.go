package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/store/pgtest"
)

// Without SWITCHBOARD_ADMIN_KEY the first start generates a key, prints it
// once and keeps it in --data-dir (0600 in a 0700 directory); the next
// start takes the same key, so a token minted before still works.
func TestGeneratedAdminKeyKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	history := store.NewMemory()
	start := func() (*Main, string) {
		t.Helper()
		var out strings.Builder
		m := &Main{
			Config: Config{Addr: "127.0.0.1:0", DataDir: dir, RingTimeout: time.Minute},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: &out,
			Store: stillOpen{history},
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		return m, out.String()
	}
	first, printed := start()
	key := first.Config.AdminKey
	if len(key) < MinAdminKeyLength || !strings.Contains(printed, key) {
		t.Fatalf("generated key %q (%d characters); printed %q", key, len(key), printed)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, adminKeyFile): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", path, fi.Mode(), err, want)
		}
	}
	status, raw := request(t, "POST", "http://"+first.Addr+"/api/tokens", key, `{"identity":{"communicationUserId":"alice"},"role":"agent"}`)
	var minted struct{ Token string }
	if status != http.StatusCreated || json.Unmarshal(raw, &minted) != nil {
		t.Fatalf("mint with the generated key: %d %s", status, raw)
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	second, printed := start()
	if second.Config.AdminKey != key {
		t.Fatalf("the second start's key differs from the first's")
	}
	if printed != "" {
		t.Errorf("the kept key was printed again: %q", printed)
	}
	if status, raw := request(t, "GET", "http://"+second.Addr+"/api/me", minted.Token, ""); status != http.StatusOK {
		t.Errorf("a token of the first run on the second: %d %s", status, raw)
	}

	// switchboard token finds the kept key in the data directory.
	var out, errOut strings.Builder
	if code := run(context.Background(), []string{"token", "--user", "carol", "--data-dir", dir}, &out, &errOut, env(nil)); code != 0 {
		t.Fatalf("token --data-dir: exit %d: %s", code, errOut.String())
	}
	if status, raw := request(t, "GET", "http://"+second.Addr+"/api/me", strings.TrimSpace(out.String()), ""); status != http.StatusOK {
		t.Errorf("a token minted with the kept key: %d %s", status, raw)
	}
}

// A token revoked on the Postgres store stays revoked after the
// switchboard is killed and started again; another token still works.
func TestRevocationSurvivesRestartPostgres(t *testing.T) {
	cluster := pgtest.Start(t)
	revocationSurvivesRestart(t, "DATABASE_URL="+cluster.URL(), "SWITCHBOARD_SPOOL_DIR="+t.TempDir(), "SWITCHBOARD_DATA_DIR="+t.TempDir())
}

// The same on the embedded SQLite store.
func TestRevocationSurvivesRestartSQLite(t *testing.T) {
	revocationSurvivesRestart(t, "DATABASE_URL=", "SWITCHBOARD_DATA_DIR="+t.TempDir())
}

// revocationSurvivesRestart revokes a token on the switchboard serve runs
// with env, kills it, starts it again, and checks the token is refused
// and another one still works.
func revocationSurvivesRestart(t *testing.T, env ...string) {
	t.Helper()
	cmd, addr := startServe(t, env...)
	base := "http://" + addr
	mintID := func(user string) (string, string) {
		status, raw := request(t, "POST", base+"/api/tokens", testAdminKey, `{"identity":{"communicationUserId":"`+user+`"},"role":"agent"}`)
		var m struct{ Token, ID string }
		if status != http.StatusCreated || json.Unmarshal(raw, &m) != nil {
			t.Fatalf("mint: %d %s", status, raw)
		}
		return m.Token, m.ID
	}
	revoked, id := mintID("alice")
	kept, _ := mintID("bob")
	if status, raw := request(t, "DELETE", base+"/api/tokens/"+id, testAdminKey, ""); status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", status, raw)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, addr = startServe(t, env...)
	base = "http://" + addr
	if status, _ := request(t, "GET", base+"/api/me", revoked, ""); status != http.StatusUnauthorized {
		t.Errorf("the revoked token after a restart: %d, want 401", status)
	}
	if status, raw := request(t, "GET", base+"/api/me", kept, ""); status != http.StatusOK {
		t.Errorf("a token not revoked after a restart: %d %s, want 200", status, raw)
	}
}
