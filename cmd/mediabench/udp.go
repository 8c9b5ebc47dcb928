package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// packetBytes is the size of one SRTP packet of 20 ms of PCMU: a 12-byte
// RTP header, 160 bytes of µ-law and a 10-byte authentication tag.
const packetBytes = 12 + 160 + 10

// frame is the media clock's period: 50 packets/s each way.
const frame = 20 * time.Millisecond

// udpCounts is the plain-UDP baseline's counters, as JSON.
type udpCounts struct {
	Received uint64 `json:"received"`
	Sent     uint64 `json:"sent"`
	Lost     uint64 `json:"lost"`
}

// udpServer is the baseline's server: one UDP socket per leg and one
// goroutine reading each (as pion has one per leg), and one 20 ms clock
// that writes a packet to every leg's peer; no mixing, no SRTP. It prints
// {"ports":[...],"stats":"http://..."} and serves its counters there
// until stdin closes or ctx ends.
func udpServer(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("udp-server", flag.ContinueOnError)
	legs := fs.Int("legs", 100, "sockets (legs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var (
		received, sent atomic.Uint64
		conns          = make([]*net.UDPConn, *legs)
		peers          = make([]atomic.Pointer[net.UDPAddr], *legs)
		ports          = make([]int, *legs)
	)
	for i := range conns {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return fmt.Errorf("udp-server: socket %d: %w", i, err)
		}
		defer c.Close()
		conns[i], ports[i] = c, c.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("udp-server: stats listener: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(udpCounts{Received: received.Load(), Sent: sent.Load()})
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				_, from, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				received.Add(1)
				if peers[i].Load() == nil {
					peers[i].Store(from)
				}
			}
		}()
	}
	if err := json.NewEncoder(stdout).Encode(map[string]any{"ports": ports, "stats": "http://" + ln.Addr().String()}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	pkt := make([]byte, packetBytes)
	tick := time.NewTicker(frame)
	defer tick.Stop()
	for seq := uint16(0); ; seq++ {
		select {
		case <-ctx.Done():
			for _, c := range conns {
				c.Close()
			}
			wg.Wait()
			return nil
		case <-tick.C:
		}
		pkt[0], pkt[2], pkt[3] = 0x80, byte(seq>>8), byte(seq)
		n := uint64(0)
		for i, c := range conns {
			if to := peers[i].Load(); to != nil {
				if _, err := c.WriteToUDP(pkt, to); err == nil {
					n++
				}
			}
		}
		sent.Add(n)
	}
}

// udpClient is the baseline's load generator: one socket per leg, each
// sending a packet every 20 ms to its server socket and counting what comes
// back (sequence gaps are losses). It prints the same window lines as
// switchboard loadgen, then its counts over the window as JSON.
func udpClient(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("udp-client", flag.ContinueOnError)
	portList := fs.String("ports", "", "the server's ports, comma-separated")
	warmup := fs.Duration("warmup", 3*time.Second, "wait before the window")
	duration := fs.Duration("duration", 20*time.Second, "the measured window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var conns []*net.UDPConn
	for _, p := range strings.Split(*portList, ",") {
		port, err := strconv.Atoi(p)
		if err != nil {
			return fmt.Errorf("udp-client: port %q: %w", p, err)
		}
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			return fmt.Errorf("udp-client: dial %d: %w", port, err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	var received, lost, sent atomic.Uint64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			var next uint16
			started := false
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if n < 4 {
					continue
				}
				seq := uint16(buf[2])<<8 | uint16(buf[3])
				if gap := seq - next; started && gap != 0 && gap < 1<<15 {
					lost.Add(uint64(gap))
				}
				next, started = seq+1, true
				received.Add(1)
			}
		}()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	senders := 2
	for k := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(k) * frame / time.Duration(senders))
			pkt := make([]byte, packetBytes)
			pkt[0] = 0x80
			tick := time.NewTicker(frame)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				for i := k; i < len(conns); i += senders {
					if _, err := conns[i].Write(pkt); err == nil {
						sent.Add(1)
					}
				}
			}
		}()
	}
	fmt.Fprintf(stdout, "udp-client: %d legs\n", len(conns))
	snap := func() udpCounts { return udpCounts{Received: received.Load(), Sent: sent.Load(), Lost: lost.Load()} }
	time.Sleep(*warmup)
	a := snap()
	fmt.Fprintln(stdout, "loadgen: window start")
	time.Sleep(*duration)
	fmt.Fprintln(stdout, "loadgen: window end")
	b := snap()
	cancel()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	err := json.NewEncoder(stdout).Encode(udpCounts{Received: b.Received - a.Received, Sent: b.Sent - a.Sent, Lost: b.Lost - a.Lost})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("udp-client: %w", err)
	}
	return nil
}
