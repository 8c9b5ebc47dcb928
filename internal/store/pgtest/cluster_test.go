package pgtest

import (
	"net"
	"strconv"
	"testing"
	"time"
)

func TestStopAndStart(t *testing.T) {
	c := Start(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port))
	dial := func() error {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("cluster not listening: %v", err)
	}
	c.StopServer()
	if err := dial(); err == nil {
		t.Fatal("cluster still listening after StopServer")
	}
	c.StartServer()
	if err := dial(); err != nil {
		t.Fatalf("cluster not listening after StartServer: %v", err)
	}
}
