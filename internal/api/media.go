package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

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
		return calls.Errorf(codeNotImplemented, "this server runs without a media plane")
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
