package main

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

	cfg := checkServeEnv(t, sb)
	if cfg.Addr != "0.0.0.0:8080" || cfg.DatabaseURL == "" {
		t.Errorf("serve reads %+v from the compose environment", cfg)
	}
	checkStopGrace(t, sb, cfg)

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

// checkServeEnv checks that every variable compose gives the service is
// one serve reads, and that together they parse; it answers what serve
// makes of them.
func checkServeEnv(t *testing.T, sb types.ServiceConfig) Config {
	t.Helper()
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
		t.Fatalf("serve rejects %s's compose environment: %v", sb.Name, err)
	}
	for k := range env {
		if !asked[k] {
			t.Errorf("compose sets %s on %s, which serve does not read", k, sb.Name)
		}
	}
	return cfg
}

// checkStopGrace: Docker's SIGKILL comes only after the drain and the
// shutdown.
func checkStopGrace(t *testing.T, sb types.ServiceConfig, cfg Config) {
	t.Helper()
	if sb.StopGracePeriod == nil || time.Duration(*sb.StopGracePeriod) <= cfg.DrainGrace+cfg.ShutdownGrace {
		t.Errorf("%s's stop_grace_period %v is not longer than its drain grace (%s) and shutdown grace (%s)",
			sb.Name, sb.StopGracePeriod, cfg.DrainGrace, cfg.ShutdownGrace)
	}
}

// loadCompose loads docker-compose.yml, as docker compose would with the
// given shell environment and --profile flags.
func loadCompose(t *testing.T, environ []string, profiles ...string) (root string, p *types.Project) {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(environ), cli.WithName("switchboard"), cli.WithProfiles(profiles))
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
// and domain to serve: the single switchboard's Caddy, and the cluster's,
// which starts after its nodes and keeps the same CA (agents keep the
// root they installed).
func TestComposeCaddy(t *testing.T) {
	for _, tt := range []struct {
		service   string
		profiles  []string
		caddyfile string
		after     []string
	}{
		{"caddy", nil, "Caddyfile", []string{"switchboard"}},
		{"caddy-cluster", []string{"cluster"}, "Caddyfile.cluster", []string{"switchboard-1", "switchboard-2", "switchboard-3"}},
	} {
		t.Run(tt.service, func(t *testing.T) {
			root, p := loadCompose(t, []string{"SWITCHBOARD_DOMAIN=pbx.example.com", "SWITCHBOARD_PUBLIC_IP=192.0.2.10"}, tt.profiles...)
			c, err := p.GetService(tt.service)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(c.Image, "caddy:2") {
				t.Errorf("%s runs image %q, want caddy:2", tt.service, c.Image)
			}
			for _, sb := range tt.after {
				if _, ok := c.DependsOn[sb]; !ok {
					t.Errorf("%s does not start after %s: %+v", tt.service, sb, c.DependsOn)
				}
			}
			published := map[string]bool{}
			for _, pc := range c.Ports {
				if pc.Protocol == "tcp" && pc.HostIP == "" {
					published[pc.Published+":"+strconv.FormatUint(uint64(pc.Target), 10)] = true
				}
			}
			for _, want := range []string{"80:80", "443:443"} {
				if !published[want] {
					t.Errorf("%s does not publish %s/tcp on every address: %+v", tt.service, want, c.Ports)
				}
			}
			mounted := false
			for _, v := range c.Volumes {
				if v.Type == types.VolumeTypeBind && v.Source == filepath.Join(root, "deploy", tt.caddyfile) && v.Target == "/etc/caddy/Caddyfile" {
					mounted = true
				}
			}
			if !mounted {
				t.Errorf("%s does not read deploy/%s: %+v", tt.service, tt.caddyfile, c.Volumes)
			}
			if !mountsNamedVolume(p, c, "/data") {
				t.Errorf("%s keeps its certificates and CA outside a named volume: %+v", tt.service, c.Volumes)
			}
			if v := volumeAt(c, "/data"); v != "caddy-data" {
				t.Errorf("%s keeps its CA on the volume %q, not caddy-data: agents would have to install another root", tt.service, v)
			}
			for k, want := range map[string]string{"SWITCHBOARD_DOMAIN": "pbx.example.com", "SWITCHBOARD_PUBLIC_IP": "192.0.2.10"} {
				if v := c.Environment[k]; v == nil || *v != want {
					t.Errorf("%s gets %s=%v, want %s", tt.service, k, v, want)
				}
			}
			// Without a domain, Caddy still gets a name to serve (an empty
			// one would make the Caddyfile invalid).
			_, p = loadCompose(t, nil, tt.profiles...)
			if c, _ := p.GetService(tt.service); c.Environment["SWITCHBOARD_DOMAIN"] == nil || *c.Environment["SWITCHBOARD_DOMAIN"] == "" {
				t.Errorf("without SWITCHBOARD_DOMAIN %s gets %v", tt.service, c.Environment["SWITCHBOARD_DOMAIN"])
			}
		})
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

// volumeAt names the named volume s mounts at target, or "".
func volumeAt(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return v.Source
		}
	}
	return ""
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

// TestCaddyfile runs Caddy on deploy/Caddyfile and deploy/Caddyfile.cluster
// with the environment compose gives it: the file is valid, the LAN
// address gets a certificate from Caddy's internal CA, a domain gets a
// public one, and both proxy to the switchboards' ports in compose; the
// cluster's to its three nodes, each asked /readyz so that a draining one
// (503) gets nothing new. It needs Debian's caddy (.ci/run installs it)
// and skips without it.
func TestCaddyfile(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed (apt-get install caddy): the Caddyfile is not checked")
	}
	single := []string{"switchboard"}
	nodes := []string{"switchboard-1", "switchboard-2", "switchboard-3"}
	for _, tt := range []struct {
		name      string
		profiles  []string
		caddy     string
		caddyfile string
		environ   []string
		internal  []string // served from Caddy's own CA
		public    []string // served with a public certificate
		upstreams []string // the compose services proxied to
		health    string   // the URI Caddy asks each of them, if any
	}{
		{"a LAN without a domain", nil, "caddy", "Caddyfile", []string{"SWITCHBOARD_PUBLIC_IP=192.0.2.10"}, []string{"192.0.2.10"}, nil, single, ""},
		{"a public domain", nil, "caddy", "Caddyfile", []string{"SWITCHBOARD_PUBLIC_IP=192.0.2.10", "SWITCHBOARD_DOMAIN=pbx.example.com"}, []string{"192.0.2.10"}, []string{"pbx.example.com"}, single, ""},
		{"the cluster on a LAN", []string{"cluster"}, "caddy-cluster", "Caddyfile.cluster", []string{"SWITCHBOARD_PUBLIC_IP=192.0.2.10"}, []string{"192.0.2.10"}, nil, nodes, "/readyz"},
		{"the cluster with a public domain", []string{"cluster"}, "caddy-cluster", "Caddyfile.cluster", []string{"SWITCHBOARD_PUBLIC_IP=192.0.2.10", "SWITCHBOARD_DOMAIN=pbx.example.com"}, []string{"192.0.2.10"}, []string{"pbx.example.com"}, nodes, "/readyz"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root, p := loadCompose(t, tt.environ, tt.profiles...)
			c, err := p.GetService(tt.caddy)
			if err != nil {
				t.Fatal(err)
			}
			var dials []string
			for _, name := range tt.upstreams {
				sb, err := p.GetService(name)
				if err != nil {
					t.Fatal(err)
				}
				_, port, _ := strings.Cut(*sb.Environment["SWITCHBOARD_ADDR"], ":")
				dials = append(dials, name+":"+port)
			}
			home := t.TempDir()
			environ := []string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home}
			for k, v := range c.Environment {
				if v != nil {
					environ = append(environ, k+"="+*v)
				}
			}
			caddyfile := filepath.Join(root, "deploy", tt.caddyfile)
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
			// Both sites proxy to every upstream, asking each the health
			// URI.
			var generic any
			if err := json.Unmarshal(adapted, &generic); err != nil {
				t.Fatal(err)
			}
			proxies := reverseProxies(generic)
			if len(proxies) != 2 {
				t.Fatalf("%d reverse proxies, want one per site (2):\n%s", len(proxies), adapted)
			}
			for _, rp := range proxies {
				var got struct {
					Upstreams []struct {
						Dial string
					}
					HealthChecks struct {
						Active struct {
							URI string
						}
					} `json:"health_checks"`
				}
				if err := json.Unmarshal(rp, &got); err != nil {
					t.Fatal(err)
				}
				var gotDials []string
				for _, u := range got.Upstreams {
					gotDials = append(gotDials, u.Dial)
				}
				if !slices.Equal(gotDials, dials) {
					t.Errorf("a site proxies to %v, want %v", gotDials, dials)
				}
				if got.HealthChecks.Active.URI != tt.health {
					t.Errorf("a site's health check asks %q, want %q", got.HealthChecks.Active.URI, tt.health)
				}
			}
		})
	}
}

// reverseProxies finds the reverse_proxy handlers in Caddy's JSON config.
func reverseProxies(v any) []json.RawMessage {
	var found []json.RawMessage
	switch v := v.(type) {
	case map[string]any:
		if v["handler"] == "reverse_proxy" {
			b, _ := json.Marshal(v)
			return []json.RawMessage{b}
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			found = append(found, reverseProxies(v[k])...)
		}
	case []any:
		for _, e := range v {
			found = append(found, reverseProxies(e)...)
		}
	}
	return found
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

// clusterNodes are the cluster profile's switchboards.
var clusterNodes = []string{"switchboard-1", "switchboard-2", "switchboard-3"}

// TestComposeProfiles: which services each way of starting compose runs.
// `docker compose up` runs the single switchboard as before the cluster
// profile existed; naming the cluster's HTTPS entry (compose then turns
// on its profile, and starts what it depends on) runs the cluster, without
// the single switchboard, which must not share the cluster's database.
func TestComposeProfiles(t *testing.T) {
	single := []string{"caddy", "postgres", "switchboard"}
	cluster := []string{"caddy-cluster", "nats", "postgres", "switchboard-1", "switchboard-2", "switchboard-3"}
	for _, tt := range []struct {
		name     string
		profiles []string // --profile
		targets  []string // the services named after up
		want     []string
	}{
		{"docker compose up", nil, nil, single},
		{"docker compose up caddy-cluster", nil, []string{"caddy-cluster"}, cluster},
		{"docker compose --profile cluster up caddy-cluster", []string{"cluster"}, []string{"caddy-cluster"}, cluster},
		{"docker compose --profile cluster up nats switchboard-1 switchboard-2 switchboard-3 caddy-cluster", []string{"cluster"},
			[]string{"nats", "switchboard-1", "switchboard-2", "switchboard-3", "caddy-cluster"}, cluster},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, p := loadCompose(t, nil, tt.profiles...)
			// What docker compose does with the services named on its
			// command line.
			p, err := p.WithServicesEnabled(tt.targets...)
			if err != nil {
				t.Fatal(err)
			}
			if p, err = p.WithSelectedServices(tt.targets, types.IncludeDependencies); err != nil {
				t.Fatal(err)
			}
			if got := slices.Sorted(maps.Keys(p.Services)); !slices.Equal(got, tt.want) {
				t.Errorf("runs %v, want %v", got, tt.want)
			}
		})
	}
	// The cluster's services are in the profile cluster, the single
	// switchboard's in none (so plain `docker compose up` runs them).
	_, p := loadCompose(t, nil, "cluster")
	for name, s := range p.Services {
		want := []string{"cluster"}
		if slices.Contains(single, name) {
			want = nil
		}
		if !slices.Equal(s.Profiles, want) {
			t.Errorf("%s has profiles %v, want %v", name, s.Profiles, want)
		}
	}
}

// TestComposeCluster: the profile cluster's NATS keeps JetStream on a
// named volume, and its three switchboards are built like the single one,
// share Postgres and NATS, and each has its own node id, volumes, and
// media and TURN ports published as they are; no two services publish the
// same port.
func TestComposeCluster(t *testing.T) {
	root, p := loadCompose(t, nil, "cluster")
	single, err := p.GetService("switchboard")
	if err != nil {
		t.Fatal(err)
	}

	nats, err := p.GetService("nats")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(nats.Image, "nats:2.") {
		t.Errorf("nats runs image %q, want nats:2.*", nats.Image)
	}
	command := strings.Join(nats.Command, " ")
	if !strings.Contains(command, "--jetstream") {
		t.Errorf("nats runs without JetStream: %v", nats.Command)
	}
	store := ""
	for i, arg := range nats.Command {
		if arg == "--store_dir" && i+1 < len(nats.Command) {
			store = nats.Command[i+1]
		}
	}
	if store == "" || !mountsNamedVolume(p, nats, store) {
		t.Errorf("nats keeps JetStream's store (--store_dir %q) outside a named volume: %v %+v", store, nats.Command, nats.Volumes)
	}
	if hc := nats.HealthCheck; hc == nil || hc.Disable || !strings.Contains(strings.Join(hc.Test, " "), "http://127.0.0.1:8222/healthz") ||
		!strings.Contains(command, "--http_port 8222") {
		t.Errorf("nats has no health check on its monitoring port 8222: %+v, %v", hc, nats.Command)
	}

	type published struct {
		port, proto string
	}
	owner := map[published]string{}
	for _, s := range p.Services {
		if s.Name == "caddy" {
			// Only the two Caddies share ports (80 and 443), and they
			// never run together (TestComposeProfiles).
			continue
		}
		for _, pc := range s.Ports {
			key := published{pc.Published, pc.Protocol}
			if other, ok := owner[key]; ok {
				t.Errorf("%s and %s both publish %s/%s", other, s.Name, pc.Published, pc.Protocol)
			}
			owner[key] = s.Name
		}
	}

	ids := map[string]string{}
	// Each node's spool and data are its own: not another node's, not the
	// single switchboard's.
	volumes := map[string]string{}
	for _, target := range []string{"/var/lib/switchboard/spool", "/var/lib/switchboard/data"} {
		volumes[volumeAt(single, target)] = "switchboard"
	}
	for _, name := range clusterNodes {
		t.Run(name, func(t *testing.T) {
			sb, err := p.GetService(name)
			if err != nil {
				t.Fatal(err)
			}
			if sb.Image != single.Image || sb.Build == nil || sb.Build.Context != root {
				t.Errorf("%s runs %q built from %+v, not the switchboard's image %q built from this repository", name, sb.Image, sb.Build, single.Image)
			}
			for dep, want := range map[string]string{"postgres": types.ServiceConditionHealthy, "nats": types.ServiceConditionHealthy} {
				if got, ok := sb.DependsOn[dep]; !ok || got.Condition != want {
					t.Errorf("%s does not wait for a healthy %s: %+v", name, dep, sb.DependsOn)
				}
			}
			for _, k := range []string{"DATABASE_URL", "SWITCHBOARD_ADDR", "SWITCHBOARD_SPOOL_DIR", "SWITCHBOARD_TRUSTED_PROXIES", "SWITCHBOARD_PUBLIC_IP"} {
				if got, want := sb.Environment[k], single.Environment[k]; got == nil || want == nil || *got != *want {
					t.Errorf("%s gets %s=%v, the single switchboard %v", name, k, got, want)
				}
			}
			if !slices.Equal(sb.EnvFiles, single.EnvFiles) {
				t.Errorf("%s reads env files %+v, not the single switchboard's %+v (the admin key must be the same on every node)", name, sb.EnvFiles, single.EnvFiles)
			}
			if c := sb.Environment["SWITCHBOARD_CLUSTER"]; c == nil || *c != "nats://nats:4222" {
				t.Errorf("%s gets SWITCHBOARD_CLUSTER=%v, want nats://nats:4222", name, c)
			}
			if id := sb.Environment["SWITCHBOARD_NODE_ID"]; id == nil || *id == "" {
				t.Errorf("%s has no SWITCHBOARD_NODE_ID", name)
			} else if other, ok := ids[*id]; ok {
				t.Errorf("%s and %s have the same node id %q", other, name, *id)
			} else {
				ids[*id] = name
			}
			for _, target := range []string{"/var/lib/switchboard/spool", "/var/lib/switchboard/data"} {
				v := volumeAt(sb, target)
				if !mountsNamedVolume(p, sb, target) {
					t.Errorf("%s keeps %s outside a named volume: %+v", name, target, sb.Volumes)
				} else if other, ok := volumes[v]; ok {
					t.Errorf("%s and %s both mount the volume %s", other, name, v)
				} else {
					volumes[v] = name
				}
			}

			// Media: the UDP port (and its ICE-TCP twin) and the TURN
			// relay's port, each published as it is.
			udp, tcp := map[string]bool{}, map[string]bool{}
			for _, pc := range sb.Ports {
				if pc.Published != strconv.FormatUint(uint64(pc.Target), 10) {
					continue
				}
				map[string]map[string]bool{"udp": udp, "tcp": tcp}[pc.Protocol][pc.Published] = true
			}
			if port := sb.Environment["SWITCHBOARD_UDP_PORT"]; port == nil {
				t.Errorf("%s sets no SWITCHBOARD_UDP_PORT", name)
			} else if !udp[*port] || !tcp[*port] {
				t.Errorf("%s's SWITCHBOARD_UDP_PORT=%s is not published as it is on UDP and TCP: %+v", name, *port, sb.Ports)
			}
			if addr := sb.Environment["SWITCHBOARD_TURN_ADDR"]; addr == nil {
				t.Errorf("%s sets no SWITCHBOARD_TURN_ADDR", name)
			} else if _, port, err := net.SplitHostPort(*addr); err != nil || !udp[port] || !tcp[port] {
				t.Errorf("%s's SWITCHBOARD_TURN_ADDR=%s is not published as it is on UDP and TCP: %+v", name, *addr, sb.Ports)
			}
			for _, pc := range sb.Ports {
				if pc.Target == 8080 {
					t.Errorf("%s publishes its plain HTTP port: the cluster is reached through caddy-cluster", name)
				}
			}

			if !slices.Equal(sb.HealthCheck.Test, single.HealthCheck.Test) {
				t.Errorf("%s's health check is %v, not the single switchboard's %v", name, sb.HealthCheck.Test, single.HealthCheck.Test)
			}
			cfg := checkServeEnv(t, sb)
			if !cfg.Cluster.On() || cfg.Cluster.NodeID != *sb.Environment["SWITCHBOARD_NODE_ID"] {
				t.Errorf("serve reads the cluster %+v from %s's environment", cfg.Cluster, name)
			}
			checkStopGrace(t, sb, cfg)
			if sb.StopSignal != "SIGTERM" {
				t.Errorf("%s is stopped with %q, not SIGTERM (which drains it)", name, sb.StopSignal)
			}
		})
	}
}
