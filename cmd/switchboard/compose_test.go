package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFile loads docker-compose.yml with the compose-spec parser
// (the one Docker Compose uses) and checks the deployment has what the
// switchboard needs.
func TestComposeFile(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv([]string{}), cli.WithName("switchboard"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}

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

	example, err := os.ReadFile(filepath.Join(root, "switchboard.env.example"))
	if err != nil || !strings.Contains(string(example), "SWITCHBOARD_ADMIN_KEY=") {
		t.Errorf("switchboard.env.example does not show SWITCHBOARD_ADMIN_KEY: %v", err)
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
	if !strings.Contains(string(df), "USER switchboard") {
		t.Error("the image runs as root")
	}
}
