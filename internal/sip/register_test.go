package sip_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/sip"
)

// TestRegister: a trunk with ;register registers with the carrier (sipp
// as its registrar, testdata/sipp/registrar.xml): a 503 is retried, a 423
// raises the expiry to its Min-Expires, the digest challenge is answered,
// the registration is refreshed at half of the grant, and Close
// unregisters (Expires: 0). sipp checks each REGISTER's Expires and
// Authorization.
func TestRegister(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		name, transport := "UDP", "u1"
		if tcp {
			name, transport = "TCP", "t1"
		}
		t.Run(name, func(t *testing.T) {
			port := freePort(t)
			trunk := "carrier=sip:carrier:secret@127.0.0.1:" + strconv.Itoa(port) + ";register=1"
			if tcp {
				trunk += ";transport=tcp"
			}
			carrier := (&harness{t: t}).startCarrier("registrar.xml", port, transport)
			if tcp {
				waitListening(t, "127.0.0.1:"+strconv.Itoa(port))
			}
			h := newHarness(t, trunk)
			reg := waitRegistered(t, h.srv, 2)
			if reg.Trunk != "carrier" || reg.LastError != "" || time.Until(reg.Until) < 30*time.Minute {
				t.Errorf("after the refresh: %+v, want carrier registered for an hour", reg)
			}
			if trs := h.srv.Trunks(); len(trs) != 1 || trs[0] != (sip.TrunkStatus{Name: "carrier", State: sip.TrunkRegistered}) {
				t.Errorf("Trunks() after the refresh = %+v, want carrier registered", trs)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.srv.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			carrier.wait(t) // it saw the unregistering
			if regs := h.srv.Registrations(); len(regs) != 1 || !regs[0].Until.IsZero() {
				t.Errorf("after Close: %+v, want unregistered", regs)
			}
			if trs := h.srv.Trunks(); len(trs) != 1 || trs[0].State != sip.TrunkUnregistered {
				t.Errorf("Trunks() after Close = %+v, want carrier unregistered", trs)
			}
		})
	}
}

// waitRegistered waits until the server's only registration has been
// accepted n times.
func waitRegistered(t *testing.T, srv *sip.Server, n int) sip.Registration {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // a hang, not a speed check
	for {
		regs := srv.Registrations()
		if len(regs) != 1 {
			t.Fatalf("Registrations() = %+v, want one", regs)
		}
		if regs[0].Registered >= n {
			return regs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("registration %+v: not accepted %d times", regs[0], n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
