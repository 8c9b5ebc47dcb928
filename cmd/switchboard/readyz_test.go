package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard/switchboard/internal/api"
)

// readyzAs reads /readyz with key as bearer (none when empty), checked
// against the OpenAPI description; the admin's JSON is decoded into body.
func readyzAs(t *testing.T, m *Main, key string, body any) (int, []byte) {
	t.Helper()
	status, raw := get(t, "http://"+m.Addr+"/readyz", key)
	if body != nil {
		if err := json.Unmarshal(raw, body); err != nil {
			t.Fatalf("/readyz answered %d %s: %v", status, raw, err)
		}
	}
	return status, raw
}

// readyAnswer is /readyz's JSON to the admin key; Trunks is nil when the
// key is absent.
type readyAnswer struct {
	Status string            `json:"status"`
	Trunks []api.TrunkStatus `json:"trunks"`
}

// TestReadyzTrunks: with --sip-addr, /readyz lists every trunk to the
// admin key, in the order given: one registered with a real registrar
// (sipp, testdata/sipp/registrar_grants.xml), one whose REGISTER fails (nobody
// listens on its TCP port), with its error, and one that does not
// register; the failed one leaves /readyz at 200. Without the key the
// answer is only ok.
func TestReadyzTrunks(t *testing.T) {
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Skip("sipp is not installed (Debian package sip-tester)")
	}
	port := sippPort(t)
	registrar := sippWith(t, "registrar_grants.xml", "-p", port)
	m, _ := startSIPTrunks(t, "",
		"carrier=sip:carrier:secret@127.0.0.1:"+port+";register",
		"dead=sip:dead:secret@127.0.0.1:"+strconv.Itoa(closedTCPPort(t))+";register;transport=tcp",
		"pbx=sip:127.0.0.1:5099")

	var got readyAnswer
	deadline := time.Now().Add(30 * time.Second) // a hang, not a speed check
	for {
		got = readyAnswer{}
		if status, raw := readyzAs(t, m, testAdminKey, &got); status != http.StatusOK {
			t.Fatalf("/readyz with the admin key: %d %s, want 200", status, raw)
		}
		if len(got.Trunks) == 3 && got.Trunks[0].State == "registered" && got.Trunks[1].State == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz trunks = %+v, want carrier registered and dead failed", got.Trunks)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.Status != "ready" {
		t.Errorf("status = %q, want ready", got.Status)
	}
	for i, want := range []api.TrunkStatus{
		{Name: "carrier", State: "registered"},
		{Name: "dead", State: "failed"},
		{Name: "pbx", State: "static"},
	} {
		tr := got.Trunks[i]
		if tr.Name != want.Name || tr.State != want.State {
			t.Errorf("trunks[%d] = %+v, want %s %s", i, tr, want.Name, want.State)
		}
		if (tr.State == "failed") != (tr.Error != "") {
			t.Errorf("trunks[%d] = %+v: want an error with failed, and only then", i, tr)
		}
	}
	if status, raw := readyzAs(t, m, "", nil); status != http.StatusOK || string(raw) != "ok\n" {
		t.Errorf("/readyz without the key: %d %q, want 200 ok", status, raw)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	registrar() // it saw the unregistering
}

// TestReadyzWithoutSIP: without --sip-addr the admin's /readyz has no
// trunks key.
func TestReadyzWithoutSIP(t *testing.T) {
	m, _ := startOps(t, Config{})
	status, raw := readyzAs(t, m, testAdminKey, nil)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil || status != http.StatusOK {
		t.Fatalf("/readyz with the admin key: %d %s (%v), want 200 JSON", status, raw, err)
	}
	if _, ok := body["trunks"]; ok || body["status"] != "ready" {
		t.Errorf("/readyz with the admin key = %s, want status ready and no trunks", raw)
	}
}

// closedTCPPort is a TCP port on 127.0.0.1 that nobody listened on a
// moment ago.
func closedTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
