package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	vcs := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/switchboard/switchboard", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-04T17:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tt := range []struct {
		name  string
		bi    *debug.BuildInfo
		stamp Stamp
		want  Info
		str   string
	}{
		{"no build info", nil, Stamp{}, Info{Version: "dev"}, "dev (revision unknown)"},
		{"the build's VCS info", vcs, Stamp{},
			Info{Version: "dev", Revision: "0123456789abcdef0123456789abcdef01234567", Time: "2026-12-04T17:00:00Z", Modified: true, GoVersion: "go1.26.8"},
			"dev (revision 0123456789ab, 2026-12-04T17:00:00Z, modified, go1.26.8)"},
		{"stamped at link time wins", vcs, Stamp{Version: "v1.0.0", Revision: "fedcba", Time: "2026-01-01T00:00:00Z", Modified: "false"},
			Info{Version: "v1.0.0", Revision: "fedcba", Time: "2026-01-01T00:00:00Z", GoVersion: "go1.26.8"},
			"v1.0.0 (revision fedcba, 2026-01-01T00:00:00Z, go1.26.8)"},
		{"a module version", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261204170000-0123456789ab"}}, Stamp{},
			Info{Version: "v0.0.0-20261204170000-0123456789ab"}, "v0.0.0-20261204170000-0123456789ab (revision unknown)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := FromBuildInfo(tt.bi, tt.stamp)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
		})
	}
}
