package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/audio/rtc"
	"github.com/switchboard/switchboard/internal/calls"
)

// MediaAttacher makes a browser's or softphone's WebRTC leg an identity's
// audio endpoint: it answers the offer (errors wrap rtc.ErrBadSDP when the
// offer is at fault).
type MediaAttacher interface {
	AttachWebRTC(ctx context.Context, rawID, offer string) (answer string, err error)
}

// maxSDPBytes bounds an offer: a browser's audio-only offer is 3-6 KB.
const maxSDPBytes = 16 << 10

type sdpBody struct {
	SDP string `json:"sdp"`
}

// mediaWebRTC is POST /api/media/webrtc: {"sdp": offer} answers {"sdp":
// answer}, ICE gathered.
func (s *Server) mediaWebRTC(c echo.Context) error {
	if s.cfg.Media == nil {
		return calls.Errorf(calls.CodeNotImplemented, "this server runs without a media plane")
	}
	var body sdpBody
	if err := decode(c, &body, false); err != nil {
		return err
	}
	switch {
	case body.SDP == "":
		return calls.Errorf(calls.CodeInvalidRequest, "sdp: an offer is required")
	case len(body.SDP) > maxSDPBytes:
		return calls.Errorf(codePayloadTooLarge, "sdp: the offer is %d bytes; at most %d", len(body.SDP), maxSDPBytes)
	}
	who := sessionOf(c).Principal.Identifier.RawID()
	answer, err := s.cfg.Media.AttachWebRTC(c.Request().Context(), who, body.SDP)
	if errors.Is(err, rtc.ErrBadSDP) {
		return calls.Errorf(calls.CodeInvalidRequest, "sdp: %v", err)
	}
	if errors.Is(err, rtc.ErrNoSharedPort) {
		return calls.Errorf(calls.CodeUnavailable, "%v: connect from another socket", err)
	}
	if err != nil {
		return fmt.Errorf("attaching %s's WebRTC endpoint: %w", who, err)
	}
	return c.JSON(http.StatusOK, sdpBody{SDP: answer})
}

// ICEServer is one STUN or TURN server for a WebRTC agent, as a browser's
// RTCIceServer: the URLs (stun:, turn:, turns:) and, for TURN, a username
// and credential.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// ICEServers lists the ICE servers an identity's WebRTC agent may use,
// with credentials minted for it. host is the name or address the client
// reached the API by (the request's Host, without the port): the server's
// address as the client sees it, for servers that run here and have no
// public address configured.
type ICEServers interface {
	ICEServers(ctx context.Context, rawID, host string) ([]ICEServer, error)
}

type iceServersBody struct {
	ICEServers []ICEServer `json:"iceServers"`
}

// mediaICEServers is GET /api/media/ice-servers: {"iceServers": [...]}
// for the token holder, with fresh credentials ([] when none are set up).
func (s *Server) mediaICEServers(c echo.Context) error {
	body := iceServersBody{ICEServers: []ICEServer{}}
	if s.cfg.ICE != nil {
		who := sessionOf(c).Principal.Identifier.RawID()
		list, err := s.cfg.ICE.ICEServers(c.Request().Context(), who, requestHost(c.Request()))
		if err != nil {
			return fmt.Errorf("listing %s's ICE servers: %w", who, err)
		}
		if list != nil {
			body.ICEServers = list
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, body)
}

// requestHost is the host part of the request's Host header.
func requestHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.Host); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(r.Host, "["), "]")
}
