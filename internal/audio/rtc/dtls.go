package rtc

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/fingerprint"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/deadline"
)

// certificate is a leg's DTLS identity: a self-signed ECDSA P-256
// certificate and its SHA-256 fingerprint, as the SDP carries it.
type certificate struct {
	tls         tls.Certificate
	fingerprint string // "sha-256 AB:CD:..."
}

func newCertificate() (*certificate, error) {
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		return nil, fmt.Errorf("rtc: DTLS certificate: %w", err)
	}
	x, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("rtc: DTLS certificate: %w", err)
	}
	fp, err := fingerprint.Fingerprint(x, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("rtc: DTLS certificate fingerprint: %w", err)
	}
	return &certificate{tls: cert, fingerprint: "sha-256 " + fp}, nil
}

// verifyFingerprint checks the peer's certificate against the fingerprint
// its SDP announced ("sha-256 AB:CD:..."): that binds the DTLS session to
// the signalling, which is what authenticates the peer.
func verifyFingerprint(want string) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("rtc: the peer sent no DTLS certificate")
		}
		algo, value, _ := strings.Cut(want, " ")
		hash, err := fingerprint.HashFromString(algo)
		if err != nil {
			return fmt.Errorf("rtc: fingerprint algorithm %q: %w", algo, err)
		}
		cert, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("rtc: the peer's DTLS certificate: %w", err)
		}
		got, err := fingerprint.Fingerprint(cert, hash)
		if err != nil {
			return fmt.Errorf("rtc: the peer's DTLS certificate: %w", err)
		}
		if !strings.EqualFold(got, strings.TrimSpace(value)) {
			return errors.New("rtc: the peer's DTLS certificate does not match the fingerprint in its SDP")
		}
		return nil
	}
}

// srtpKeys are a connected leg's SRTP contexts: enc is used by whoever
// sends (one goroutine at a time), dec by the leg's reading goroutine.
type srtpKeys struct {
	enc, dec *srtp.Context
	conn     *ice.Conn // the ICE transport they run on
}

// handshakeTimeout bounds the DTLS handshake once ICE has connected.
const handshakeTimeout = 10 * time.Second

// handshake runs DTLS over the leg's ICE connection (client when the SDP
// made this side "active") and derives the SRTP keys from it (RFC 5764).
func handshake(ctx context.Context, pipe *dtlsPipe, client bool, cert *certificate, remoteFingerprint string, logs logging.LoggerFactory) (*dtls.Conn, *srtpKeys, error) {
	opts := []dtls.Option{
		dtls.WithCertificates(cert.tls),
		dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		// Self-signed: the fingerprint check below is the verification.
		dtls.WithInsecureSkipVerify(true),
		dtls.WithVerifyPeerCertificate(verifyFingerprint(remoteFingerprint)),
		dtls.WithLoggerFactory(logs),
	}
	var conn *dtls.Conn
	var err error
	if client {
		copts := make([]dtls.ClientOption, 0, len(opts))
		for _, o := range opts {
			copts = append(copts, o)
		}
		conn, err = dtls.ClientWithOptions(pipe, pipe.RemoteAddr(), copts...)
	} else {
		sopts := make([]dtls.ServerOption, 0, len(opts)+1)
		for _, o := range opts {
			sopts = append(sopts, o)
		}
		sopts = append(sopts, dtls.WithClientAuth(dtls.RequireAnyClientCert))
		conn, err = dtls.ServerWithOptions(pipe, pipe.RemoteAddr(), sopts...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("rtc: DTLS: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("rtc: DTLS handshake: %w", err)
	}
	keys, err := srtpFromDTLS(conn, client)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, keys, nil
}

// srtpFromDTLS makes the SRTP contexts from the keys DTLS negotiated.
func srtpFromDTLS(conn *dtls.Conn, client bool) (*srtpKeys, error) {
	negotiated, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, errors.New("rtc: the peer negotiated no SRTP profile")
	}
	var profile srtp.ProtectionProfile
	switch negotiated {
	case dtls.SRTP_AEAD_AES_128_GCM:
		profile = srtp.ProtectionProfileAeadAes128Gcm
	case dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		profile = srtp.ProtectionProfileAes128CmHmacSha1_80
	default:
		return nil, fmt.Errorf("rtc: SRTP profile %#04x", uint16(negotiated))
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, errors.New("rtc: DTLS state unavailable after the handshake")
	}
	cfg := srtp.Config{Profile: profile}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, client); err != nil {
		return nil, fmt.Errorf("rtc: SRTP keys: %w", err)
	}
	enc, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, profile)
	if err != nil {
		return nil, fmt.Errorf("rtc: SRTP send context: %w", err)
	}
	dec, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, profile,
		srtp.SRTPReplayProtection(64), srtp.SRTCPReplayProtection(64))
	if err != nil {
		return nil, fmt.Errorf("rtc: SRTP receive context: %w", err)
	}
	return &srtpKeys{enc: enc, dec: dec}, nil
}

// dtlsPipe is the net.PacketConn DTLS runs on: the leg's reading goroutine
// hands it the DTLS records it reads from the ICE connection (RFC 7983
// demultiplexing), and what DTLS writes goes out on that connection.
type dtlsPipe struct {
	conn     *ice.Conn
	in       chan []byte
	closed   chan struct{}
	once     sync.Once
	deadline *deadline.Deadline
}

func newDTLSPipe(conn *ice.Conn) *dtlsPipe {
	return &dtlsPipe{conn: conn, in: make(chan []byte, 16), closed: make(chan struct{}), deadline: deadline.New()}
}

// push hands a DTLS record to the pipe; a full pipe drops it (DTLS
// retransmits).
func (p *dtlsPipe) push(record []byte) {
	select {
	case <-p.closed:
	case p.in <- append([]byte(nil), record...):
	default:
	}
}

func (p *dtlsPipe) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case r := <-p.in:
		return copy(b, r), p.conn.RemoteAddr(), nil
	case <-p.closed:
		return 0, nil, net.ErrClosed
	case <-p.deadline.Done():
		return 0, nil, errTimeout
	}
}

func (p *dtlsPipe) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	return p.conn.Write(b)
}

func (p *dtlsPipe) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

func (p *dtlsPipe) LocalAddr() net.Addr               { return p.conn.LocalAddr() }
func (p *dtlsPipe) RemoteAddr() net.Addr              { return p.conn.RemoteAddr() }
func (p *dtlsPipe) SetDeadline(t time.Time) error     { return p.SetReadDeadline(t) }
func (p *dtlsPipe) SetWriteDeadline(time.Time) error  { return nil }
func (p *dtlsPipe) SetReadDeadline(t time.Time) error { p.deadline.Set(t); return nil }

// errTimeout is a read past the pipe's deadline; DTLS retransmits on it.
var errTimeout net.Error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "rtc: DTLS read timed out" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
