// Package pgtest runs a private, throwaway Postgres cluster for tests that
// must stop and start the database under a running switchboard (outages),
// which the shared test server must never be. It is for tests only.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Cluster is a Postgres cluster in a temporary directory.
type Cluster struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	asPG bool // run the server as the postgres user (initdb refuses root)
}

// findBin returns the directory with initdb and pg_ctl.
func findBin() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = append(dirs, found...)
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("no initdb and pg_ctl found (install Debian's postgresql)")
}

// Start initialises a cluster on a free loopback port, starts it and stops
// and removes it when the test ends. It skips the test when Postgres's
// programs are not installed.
func Start(tb testing.TB) *Cluster {
	tb.Helper()
	bin, err := findBin()
	if err != nil {
		tb.Skip(err)
	}
	// Not tb.TempDir: its parent is private to root, and the server runs as
	// the postgres user.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	c := &Cluster{tb: tb, bin: bin, dir: dir, port: freePort(tb), asPG: os.Geteuid() == 0}
	if c.asPG {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Skipf("running as root needs a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	c.run("initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
	tb.Cleanup(func() { _ = c.pgCtl("stop", "-m", "immediate") })
	c.StartServer()
	return c
}

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// URL is the cluster's database URL (database postgres).
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// StopServer stops the server (fast shutdown: clients are disconnected).
func (c *Cluster) StopServer() {
	c.tb.Helper()
	if err := c.pgCtl("stop", "-m", "fast"); err != nil {
		c.tb.Fatalf("pg_ctl stop: %v", err)
	}
}

// StartServer starts the server and waits until it accepts connections.
func (c *Cluster) StartServer() {
	c.tb.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.dir)
	if err := c.pgCtl("start", "-w", "-l", filepath.Join(c.dir, "pg.log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "pg.log"))
		c.tb.Fatalf("pg_ctl start: %v\n%s", err, log)
	}
}

func (c *Cluster) pgCtl(args ...string) error {
	_, err := c.output("pg_ctl", append([]string{"-D", c.data()}, args...)...)
	return err
}

func (c *Cluster) run(prog string, args ...string) {
	c.tb.Helper()
	if out, err := c.output(prog, args...); err != nil {
		c.tb.Fatalf("%s: %v\n%s", prog, err, out)
	}
}

func (c *Cluster) output(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	return cmd.CombinedOutput()
}
