// Package buildinfo says which build is running: the version and the
// version-control state the Go toolchain stamped into the binary
// (vcs.revision, vcs.time, vcs.modified), or values set at link time when
// the build had no repository to read (the Docker image passes them with
// -ldflags -X). It only reads; it has no state of its own.
package buildinfo

import (
	"runtime/debug"
	"strconv"
	"strings"
)

// Info is what a build knows about itself. It is also the body of
// GET /version.
type Info struct {
	// Version is the release version set at link time, or "dev".
	Version string `json:"version"`
	// Revision is the commit the binary was built from; empty when
	// unknown.
	Revision string `json:"revision,omitempty"`
	// Time is the commit's time, RFC 3339; empty when unknown.
	Time string `json:"time,omitempty"`
	// Modified is true when the working tree had uncommitted changes.
	Modified bool `json:"modified"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"goVersion,omitempty"`
}

// Stamp holds the values set at link time; empty fields are left to the
// build's VCS info.
type Stamp struct {
	Version, Revision, Time, Modified string
}

// Read answers the running binary's Info: s's values first, then what
// runtime/debug.ReadBuildInfo found.
func Read(s Stamp) Info {
	bi, _ := debug.ReadBuildInfo()
	return FromBuildInfo(bi, s)
}

// FromBuildInfo answers the Info of a build described by bi (nil: none)
// and stamped with s.
func FromBuildInfo(bi *debug.BuildInfo, s Stamp) Info {
	info := Info{Version: s.Version, Revision: s.Revision, Time: s.Time}
	if s.Modified != "" {
		info.Modified, _ = strconv.ParseBool(s.Modified)
	}
	if bi != nil {
		info.GoVersion = bi.GoVersion
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				if info.Revision == "" {
					info.Revision = kv.Value
				}
			case "vcs.time":
				if info.Time == "" {
					info.Time = kv.Value
				}
			case "vcs.modified":
				if s.Modified == "" {
					info.Modified = kv.Value == "true"
				}
			}
		}
		if v := bi.Main.Version; info.Version == "" && v != "" && v != "(devel)" {
			info.Version = v
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	return info
}

// Short is the revision's first 12 characters, or "unknown".
func (i Info) Short() string {
	if i.Revision == "" {
		return "unknown"
	}
	return i.Revision[:min(12, len(i.Revision))]
}

// String is one line for people: "dev (revision 0123456789ab, 2026-12-04T17:00:00Z, modified)".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	b.WriteString(" (revision ")
	b.WriteString(i.Short())
	if i.Time != "" {
		b.WriteString(", ")
		b.WriteString(i.Time)
	}
	if i.Modified {
		b.WriteString(", modified")
	}
	if i.GoVersion != "" {
		b.WriteString(", ")
		b.WriteString(i.GoVersion)
	}
	b.WriteString(")")
	return b.String()
}
