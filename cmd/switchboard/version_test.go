package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionLdflags runs scripts/version-ldflags (what the Dockerfile
// stamps the binary with) in a fresh git repository: it names the commit,
// its time and whether the tree was modified, the build arguments win, and
// outside a repository it prints nothing.
func TestVersionLdflags(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	script, err := filepath.Abs("../../scripts/version-ldflags")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gitIn := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2026-12-04T17:00:00Z", "GIT_AUTHOR_DATE=2026-12-04T17:00:00Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	ldflags := func(env ...string) string {
		t.Helper()
		cmd := exec.Command("sh", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("version-ldflags: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if got := ldflags(); got != "" {
		t.Errorf("outside a repository: %q, want nothing", got)
	}
	gitIn("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn("add", "f")
	gitIn("commit", "-q", "-m", "one")
	rev := gitIn("rev-parse", "HEAD")
	want := "-X main.revision=" + rev + " -X main.revisionTime=2026-12-04T17:00:00Z -X main.revisionModified=false"
	if got := ldflags(); got != want {
		t.Errorf("a clean tree: %q, want %q", got, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ldflags(); !strings.HasSuffix(got, "-X main.revisionModified=true") {
		t.Errorf("a modified tree: %q, want revisionModified=true", got)
	}
	if got, want := ldflags("VERSION=v1.2.3", "VCS_REVISION=abc", "VCS_TIME=2026-01-01T00:00:00Z"), "-X main.version=v1.2.3 -X main.revision=abc -X main.revisionTime=2026-01-01T00:00:00Z"; got != want {
		t.Errorf("build arguments: %q, want %q", got, want)
	}

	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(df), `-buildvcs=false -ldflags "-s -w $(sh scripts/version-ldflags)"`) {
		t.Error("the Dockerfile does not stamp the binary with scripts/version-ldflags")
	}
}

// TestVersionStampedBuild builds the program with the flags
// scripts/version-ldflags prints for a made-up commit, as the Dockerfile
// does, and runs `switchboard version`: the -X names must exist (a wrong
// one is silently ignored by the linker).
func TestVersionStampedBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the program")
	}
	cmd := exec.Command("sh", "../../scripts/version-ldflags")
	cmd.Env = append(os.Environ(), "VERSION=v7.7.7", "VCS_REVISION=feedfacecafebeef0123", "VCS_TIME=2026-12-04T17:00:00Z", "VCS_MODIFIED=true")
	flags, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "switchboard")
	build := exec.Command("go", "build", "-buildvcs=false", "-ldflags", strings.TrimSpace(string(flags)), "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "switchboard v7.7.7 (revision feedfacecafe, 2026-12-04T17:00:00Z, modified, go"; !strings.HasPrefix(string(out), want) {
		t.Errorf("version printed %q, want it to start with %q", out, want)
	}
}
