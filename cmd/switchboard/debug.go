package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/internal/audio"
	"github.com/switchboard/switchboard/internal/audio/rtc"
	"github.com/switchboard/switchboard/internal/turnserver"
)

// MediaStats is GET /debug/media on the debug listener: what the media
// plane carried so far and the CPU the process used, for the load
// generator and the media benchmark.
type MediaStats struct {
	Mixer struct {
		Ticks   uint64  `json:"ticks"`
		Late    uint64  `json:"late"` // ticks that started over 5 ms late
		MaxLate float64 `json:"maxLateMs"`
		Busy    float64 `json:"busyMs"` // time inside ticks
	} `json:"mixer"`
	Legs rtc.Stats `json:"legs"`
	// CPU is the process's user and system CPU time, from getrusage.
	CPU struct {
		User   float64 `json:"userSec"`
		System float64 `json:"systemSec"`
	} `json:"cpu"`
	MaxRSS int64 `json:"maxRssBytes"`
	// TURN is the embedded relay's, with --turn-addr.
	TURN *turnserver.Stats `json:"turn,omitempty"`
}

// startDebug serves the debug listener until ctx ends: GET /debug/media
// and net/http/pprof under /debug/pprof/, both behind the admin key as a
// bearer token.
// It answers the address it listens on.
func startDebug(ctx context.Context, addr, adminKey string, mixer *audio.Mixer, engine *rtc.Engine, relay *turnserver.Server, log *slog.Logger) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("--debug-addr %s: %w", addr, err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		log.Warn("the debug listener (pprof, media stats; the admin key is required) listens on a non-loopback address", "addr", ln.Addr().String())
	}
	mux := http.NewServeMux()
	admin := func(h http.HandlerFunc) http.HandlerFunc { return requireAdmin(adminKey, h) }
	mux.HandleFunc("GET /debug/pprof/", admin(pprof.Index))
	mux.HandleFunc("GET /debug/pprof/cmdline", admin(pprof.Cmdline))
	mux.HandleFunc("GET /debug/pprof/profile", admin(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/symbol", admin(pprof.Symbol))
	mux.HandleFunc("POST /debug/pprof/symbol", admin(pprof.Symbol))
	mux.HandleFunc("GET /debug/pprof/trace", admin(pprof.Trace))
	mux.HandleFunc("GET /debug/media", admin(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(mediaStats(mixer, engine, relay)); err != nil {
			log.Debug("writing media stats", "err", err)
		}
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug listener stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { _ = srv.Close() })
	log.Info("debug listener (pprof, media stats)", "addr", ln.Addr().String())
	return ln.Addr().String(), nil
}

// requireAdmin answers 401 unless the request carries the admin key as a
// bearer token. go tool pprof sends no headers: fetch a profile with curl
// -H "Authorization: Bearer KEY" and give pprof the file.
func requireAdmin(adminKey string, h http.HandlerFunc) http.HandlerFunc {
	want := []byte("Bearer " + adminKey)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "the admin key is required (Authorization: Bearer <admin key>)", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func mediaStats(mixer *audio.Mixer, engine *rtc.Engine, relay *turnserver.Server) MediaStats {
	var s MediaStats
	ms := mixer.Stats()
	s.Mixer.Ticks, s.Mixer.Late = ms.Ticks, ms.Late
	s.Mixer.MaxLate = float64(ms.MaxLate) / float64(time.Millisecond)
	s.Mixer.Busy = float64(ms.Busy) / float64(time.Millisecond)
	s.Legs = engine.Stats()
	if relay != nil {
		t := relay.Stats()
		s.TURN = &t
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.CPU.User = time.Duration(ru.Utime.Nano()).Seconds()
		s.CPU.System = time.Duration(ru.Stime.Nano()).Seconds()
		s.MaxRSS = ru.Maxrss * 1024
	}
	return s
}
