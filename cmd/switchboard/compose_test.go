package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFile loads docker-compose.yml with the compose-spec parser
// (the one Docker Compose uses) and checks the deployment has what the
// switchboard needs.
func TestComposeFile(t *testing.T) {
	root, p := loadCompose(t, nil)

	pg, err := p.GetService("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if pg.HealthCheck == nil || len(pg.HealthCheck.Test) == 0 || !strings.Contains(strings.Join(pg.HealthCheck.Test, " "), "pg_isready") {
		t.Errorf("postgres has no pg_isready health check: %+v", pg.HealthCheck)
	}
	if !mountsNamedVolume(p, pg, "/var/lib/postgresql/data") {
		t.Errorf("postgres keeps its data outside a named volume: %+v", pg.Volumes)
	}

	sb, err := p.GetService("switchboard")
	if err != nil {
		t.Fatal(err)
	}
	if sb.Build == nil || sb.Build.Context != root {
		t.Errorf("switchboard is not built from this repository: %+v", sb.Build)
	}
	if dep, ok := sb.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("switchboard does not wait for a healthy postgres: %+v", sb.DependsOn)
	}
	if len(sb.Ports) == 0 || sb.Ports[0].Target != 8080 {
		t.Errorf("switchboard does not publish port 8080: %+v", sb.Ports)
	} else if sb.Ports[0].HostIP != "127.0.0.1" {
		t.Errorf("plain HTTP on 8080 is published on %q, not only on loopback (other machines must come through Caddy's HTTPS)", sb.Ports[0].HostIP)
	}
	// WebRTC media: the UDP port every leg shares is published as it is,
	// and the candidates carry an address browsers reach.
	published := map[string]map[uint32]bool{"udp": {}, "tcp": {}}
	for _, pc := range sb.Ports {
		proto := pc.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if published[proto] != nil && pc.Published == strconv.FormatUint(uint64(pc.Target), 10) {
			published[proto][pc.Target] = true
		}
	}
	udp, tcp := published["udp"], published["tcp"]
	if port := sb.Environment["SWITCHBOARD_UDP_PORT"]; port == nil {
		t.Error("compose sets no SWITCHBOARD_UDP_PORT: WebRTC would use ports nobody published")
	} else if !udp[atoi(t, *port)] {
		t.Errorf("SWITCHBOARD_UDP_PORT=%s is not published as UDP: %+v", *port, sb.Ports)
	} else if !tcp[atoi(t, *port)] {
		t.Errorf("SWITCHBOARD_UDP_PORT=%s is not published as TCP for ICE-TCP: %+v", *port, sb.Ports)
	}
	// The embedded TURN relay listens on UDP and TCP, each published as it
	// is (its URLs name the port it listens on).
	if addr := sb.Environment["SWITCHBOARD_TURN_ADDR"]; addr == nil || *addr == "" {
		t.Error("compose sets no SWITCHBOARD_TURN_ADDR: agents behind NAT or a UDP-dropping firewall get no audio")
	} else if _, port, err := net.SplitHostPort(*addr); err != nil {
		t.Errorf("SWITCHBOARD_TURN_ADDR=%s: %v", *addr, err)
	} else if p := atoi(t, port); !udp[p] || !tcp[p] {
		t.Errorf("SWITCHBOARD_TURN_ADDR=%s is not published as UDP and TCP: %+v", *addr, sb.Ports)
	}
	if ip := sb.Environment["SWITCHBOARD_PUBLIC_IP"]; ip == nil || *ip == "" {
		t.Error("compose sets no SWITCHBOARD_PUBLIC_IP: candidates would carry the container's address")
	}
	if len(sb.EnvFiles) == 0 {
		t.Error("switchboard takes no env file (for SWITCHBOARD_ADMIN_KEY)")
	}
	if !mountsNamedVolume(p, sb, "/var/lib/switchboard/spool") {
		t.Errorf("the spool is not on a named volume: %+v", sb.Volumes)
	}
	if !mountsNamedVolume(p, sb, "/var/lib/switchboard/data") {
		t.Errorf("the data directory (the generated admin key) is not on a named volume: %+v", sb.Volumes)
	}
	dbURL := sb.Environment["DATABASE_URL"]
	if dbURL == nil || !strings.Contains(*dbURL, "@postgres:5432/") {
		t.Errorf("DATABASE_URL does not point at the postgres service: %v", dbURL)
	}

	// Every variable compose gives the switchboard is one serve reads, and
	// together they parse.
	env := map[string]string{}
	for k, v := range sb.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	asked := map[string]bool{}
	cfg, err := parseServeFlags(nil, io.Discard, func(k string) string {
		asked[k] = true
		return env[k]
	})
	if err != nil {
		t.Fatalf("serve rejects the compose environment: %v", err)
	}
	if cfg.Addr != "0.0.0.0:8080" || cfg.DatabaseURL == "" {
		t.Errorf("serve reads %+v from the compose environment", cfg)
	}
	for k := range env {
		if !asked[k] {
			t.Errorf("compose sets %s, which serve does not read", k)
		}
	}
	// Docker's SIGKILL comes only after the drain and the shutdown.
	if sb.StopGracePeriod == nil || time.Duration(*sb.StopGracePeriod) <= cfg.DrainGrace+cfg.ShutdownGrace {
		t.Errorf("switchboard's stop_grace_period %v is not longer than its drain grace (%s) and shutdown grace (%s)",
			sb.StopGracePeriod, cfg.DrainGrace, cfg.ShutdownGrace)
	}

	example, err := os.ReadFile(filepath.Join(root, "switchboard.env.example"))
	if err != nil || !strings.Contains(string(example), "SWITCHBOARD_ADMIN_KEY=") {
		t.Errorf("switchboard.env.example does not show SWITCHBOARD_ADMIN_KEY: %v", err)
	}
	// A key the example sets must be one serve accepts (empty: generated).
	for line := range strings.Lines(string(example)) {
		if key, ok := strings.CutPrefix(strings.TrimSpace(line), "SWITCHBOARD_ADMIN_KEY="); ok && key != "" && len(key) < MinAdminKeyLength {
			t.Errorf("switchboard.env.example sets an admin key of %d characters, which serve refuses", len(key))
		}
	}
}

// loadCompose loads docker-compose.yml, as docker compose would with the
// given shell environment.
func loadCompose(t *testing.T, environ []string) (root string, p *types.Project) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(environ), cli.WithName("switchboard"))
	if err != nil {
		t.Fatal(err)
	}
	p, err = opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return root, p
}

// TestComposeCaddy: compose serves the console over HTTPS through Caddy,
// which publishes 80 and 443, reads the committed Caddyfile, keeps its
// certificates and internal CA on a named volume, and is told the address
// and domain to serve.
func TestComposeCaddy(t *testing.T) {
	root, p := loadCompose(t, []string{"SWITCHBOARD_DOMAIN=pbx.example.com", "SWITCHBOARD_PUBLIC_IP=192.0.2.10"})
	c, err := p.GetService("caddy")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Image, "caddy:2") {
		t.Errorf("caddy runs image %q, want caddy:2", c.Image)
	}
	if _, ok := c.DependsOn["switchboard"]; !ok {
		t.Errorf("caddy does not start after the switchboard: %+v", c.DependsOn)
	}
	published := map[string]bool{}
	for _, pc := range c.Ports {
		if pc.Protocol == "tcp" && pc.HostIP == "" {
			published[pc.Published+":"+strconv.FormatUint(uint64(pc.Target), 10)] = true
		}
	}
	for _, want := range []string{"80:80", "443:443"} {
		if !published[want] {
			t.Errorf("caddy does not publish %s/tcp on every address: %+v", want, c.Ports)
		}
	}
	mounted := false
	for _, v := range c.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == filepath.Join(root, "deploy", "Caddyfile") && v.Target == "/etc/caddy/Caddyfile" {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("caddy does not read deploy/Caddyfile: %+v", c.Volumes)
	}
	if !mountsNamedVolume(p, c, "/data") {
		t.Errorf("caddy keeps its certificates and CA outside a named volume: %+v", c.Volumes)
	}
	for k, want := range map[string]string{"SWITCHBOARD_DOMAIN": "pbx.example.com", "SWITCHBOARD_PUBLIC_IP": "192.0.2.10"} {
		if v := c.Environment[k]; v == nil || *v != want {
			t.Errorf("caddy gets %s=%v, want %s", k, v, want)
		}
	}
	// Without a domain, Caddy still gets a name to serve (an empty one
	// would make the Caddyfile invalid).
	_, p = loadCompose(t, nil)
	if c, _ := p.GetService("caddy"); c.Environment["SWITCHBOARD_DOMAIN"] == nil || *c.Environment["SWITCHBOARD_DOMAIN"] == "" {
		t.Errorf("without SWITCHBOARD_DOMAIN caddy gets %v", c.Environment["SWITCHBOARD_DOMAIN"])
	}
}

func atoi(t *testing.T, s string) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		t.Fatalf("%q is not a port: %v", s, err)
	}
	return uint32(n)
}

func mountsNamedVolume(p *types.Project, s types.ServiceConfig, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			_, declared := p.Volumes[v.Source]
			return declared
		}
	}
	return false
}

// TestDockerfileSpoolDir: a named volume mounted where the image has no
// directory comes up owned by root, and the switchboard runs as a user of
// its own; the image must create the spool directory for that user.
func TestDockerfileSpoolDir(t *testing.T) {
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(df), "install -d -o switchboard -g switchboard /var/lib/switchboard/spool") {
		t.Error("the runtime image does not create /var/lib/switchboard/spool for the switchboard user")
	}
	if !strings.Contains(string(df), "install -d -m 0700 -o switchboard -g switchboard /var/lib/switchboard/data") ||
		!strings.Contains(string(df), "ENV SWITCHBOARD_DATA_DIR=/var/lib/switchboard/data") {
		t.Error("the runtime image does not create /var/lib/switchboard/data for the switchboard user and point --data-dir at it")
	}
	if !strings.Contains(string(df), "USER switchboard") {
		t.Error("the image runs as root")
	}
}

// TestCaddyfile runs Caddy on deploy/Caddyfile with the environment compose
// gives it: the file is valid, the LAN address gets a certificate from
// Caddy's internal CA, a domain gets a public one, and both proxy to the
// switchboard's port in compose. It needs Debian's caddy (.ci/run installs
// it) and skips without it.
func TestCaddyfile(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed (apt-get install caddy): the Caddyfile is not checked")
	}
	for _, tt := range []struct {
		name     string
		environ  []string
		internal []string // served from Caddy's own CA
		public   []string // served with a public certificate
	}{
		{"a LAN without a domain", []string{"SWITCHBOARD_PUBLIC_IP=192.0.2.10"}, []string{"192.0.2.10"}, nil},
		{"a public domain", []string{"SWITCHBOARD_PUBLIC_IP=192.0.2.10", "SWITCHBOARD_DOMAIN=pbx.example.com"}, []string{"192.0.2.10"}, []string{"pbx.example.com"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, p := loadCompose(t, tt.environ)
			c, err := p.GetService("caddy")
			if err != nil {
				t.Fatal(err)
			}
			sb, err := p.GetService("switchboard")
			if err != nil {
				t.Fatal(err)
			}
			home := t.TempDir()
			environ := []string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home}
			for k, v := range c.Environment {
				if v != nil {
					environ = append(environ, k+"="+*v)
				}
			}
			caddyfile := filepath.Join(root, "deploy", "Caddyfile")
			caddyCmd := func(args ...string) []byte {
				cmd := exec.Command(caddy, append(args, "--config", caddyfile, "--adapter", "caddyfile")...)
				cmd.Env = environ
				var stderr strings.Builder
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("caddy %s: %v\n%s%s", args[0], err, out, stderr.String())
				}
				return out
			}
			caddyCmd("validate")

			var cfg struct {
				Apps struct {
					HTTP struct {
						Servers map[string]json.RawMessage
					}
					TLS struct {
						Automation struct {
							Policies []struct {
								Subjects []string
								Issuers  []struct{ Module string }
							}
						}
					}
				}
			}
			adapted := caddyCmd("adapt")
			if err := json.Unmarshal(adapted, &cfg); err != nil {
				t.Fatalf("caddy adapt: %v\n%s", err, adapted)
			}
			issuer := map[string]string{}
			for _, pol := range cfg.Apps.TLS.Automation.Policies {
				for _, s := range pol.Subjects {
					issuer[s] = "public"
					for _, is := range pol.Issuers {
						if is.Module == "internal" {
							issuer[s] = "internal"
						}
					}
				}
			}
			for _, name := range tt.internal {
				if issuer[name] != "internal" {
					t.Errorf("%s is served with a %q certificate, want one from Caddy's internal CA", name, issuer[name])
				}
			}
			for _, name := range tt.public {
				if issuer[name] != "public" {
					t.Errorf("%s is served with a %q certificate, want a public one", name, issuer[name])
				}
			}
			_, port, _ := strings.Cut(*sb.Environment["SWITCHBOARD_ADDR"], ":")
			if want := `"dial":"switchboard:` + port + `"`; strings.Count(string(adapted), want) != 2 {
				t.Errorf("both sites should proxy to %s:\n%s", want, adapted)
			}
		})
	}
}

// TestComposeHealthCheck: the switchboard service has a health check that
// runs the image's own binary (the image has no curl) against the port
// SWITCHBOARD_ADDR listens on, and that command, pointed at a running
// switchboard, passes.
func TestComposeHealthCheck(t *testing.T) {
	_, p := loadCompose(t, nil)
	sb, err := p.GetService("switchboard")
	if err != nil {
		t.Fatal(err)
	}
	hc := sb.HealthCheck
	if hc == nil || len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != "switchboard" || hc.Test[2] != "healthcheck" {
		t.Fatalf("switchboard's health check is not [CMD switchboard healthcheck ...]: %+v", hc)
	}
	if hc.Disable || hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
		t.Errorf("the health check has no interval, timeout or retries: %+v", hc)
	}
	args := append([]string(nil), hc.Test[2:]...)
	addr := sb.Environment["SWITCHBOARD_ADDR"]
	if addr == nil {
		t.Fatal("SWITCHBOARD_ADDR is not set in compose")
	}
	_, port, err := net.SplitHostPort(*addr)
	if err != nil {
		t.Fatal(err)
	}
	// The URL it asks, on the running switchboard's address instead.
	m, _ := startOps(t, Config{})
	found := false
	for i := range args {
		if args[i] == "--url" && i+1 < len(args) {
			want := "http://127.0.0.1:" + port + "/healthz"
			if args[i+1] != want {
				t.Errorf("the health check asks %s, want %s", args[i+1], want)
			}
			args[i+1] = "http://" + m.Addr + "/healthz"
			found = true
		}
	}
	if !found {
		t.Fatalf("the health check names no --url: %v", hc.Test)
	}
	var out, errOut strings.Builder
	if code := run(context.Background(), args, &out, &errOut, env(nil)); code != 0 {
		t.Fatalf("%v exited %d: %s", args, code, errOut.String())
	}
}
