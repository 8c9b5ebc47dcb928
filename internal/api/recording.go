package api

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/internal/calls"
)

// Recorder records calls (internal/recording's Service): the routes
// under /api/calls/{id}/recording and GET
// /api/history/calls/{id}/recording. Nil in Config: those answer 501 and
// the history shows no recordings.
type Recorder interface {
	Start(ctx context.Context, p calls.Principal, callID string) (calls.Recording, error)
	Stop(ctx context.Context, p calls.Principal, callID string) (calls.Recording, error)
	Pause(ctx context.Context, p calls.Principal, callID string) (calls.Recording, error)
	Resume(ctx context.Context, p calls.Principal, callID string) (calls.Recording, error)
	// Recordings answers a call's recordings, oldest first, without
	// asking who may see them (the history's handler did).
	Recordings(ctx context.Context, callID string) ([]calls.Recording, error)
	// Open opens a call's recording (recordingID, or "" for the latest)
	// for p to read; the caller closes the file.
	Open(ctx context.Context, p calls.Principal, callID, recordingID string) (*os.File, calls.Recording, error)
	// Local says whether this node can read the file of a call's
	// recording (recordingID, or "" for the latest) without asking who
	// may: it wrote it, or the recordings directory is shared. Else it
	// answers the node that wrote it ("" when unknown).
	Local(ctx context.Context, callID, recordingID string) (here bool, node string)
}

// recordingFileRoute is the route of a recording's file.
const recordingFileRoute = "/api/history/calls/:id/recording"

// recordingRoute tells where a request for a recording's file runs, in a
// cluster: here when this node can read the file (it serves it, ranges and
// all, whoever owns the identity); else on the node that wrote it (node),
// which checks who asks as any node does. Neither: it is routed as any
// other request, and a node that cannot read the file answers 404
// not_found. A forwarded answer travels whole in one NATS message: a
// cluster shares --recording-dir to serve long recordings everywhere.
func (s *Server) recordingRoute(c echo.Context) (here bool, node string) {
	if s.cfg.Recordings == nil || c.Path() != recordingFileRoute {
		return false, ""
	}
	id, err := pathParam(c, "id")
	if err != nil {
		return false, ""
	}
	return s.cfg.Recordings.Local(c.Request().Context(), id, c.QueryParam("recordingId"))
}

// routeForwardedRecording runs a request for a recording's file that
// another node sent here as the node that wrote it, if this node can read
// the file; else it runs nothing and says so, and the entry node routes it
// as any other request.
func (s *Server) routeForwardedRecording(c echo.Context, f *forwarded, next echo.HandlerFunc) error {
	if c.Param("id") != f.call {
		return calls.Errorf(calls.CodeInvalidRequest, "a request sent to a recording's node must name its call")
	}
	if here, _ := s.recordingRoute(c); !here {
		f.notOwner = "?"
		return calls.Errorf(calls.CodeNotFound, "this node cannot read the recording of call %s", f.call)
	}
	return next(&sessionContext{Context: c, sess: f.sess})
}

type recordingFunc func(ctx context.Context, p calls.Principal, callID string) (calls.Recording, error)

// recordingRoutes registers the recording routes.
func (s *Server) recordingRoutes(api *authed) {
	r := s.cfg.Recordings
	if r == nil {
		r = noRecorder{}
	}
	api.POST("/calls/:id/recording/start", s.recordingAction(r.Start))
	api.POST("/calls/:id/recording/stop", s.recordingAction(r.Stop))
	api.POST("/calls/:id/recording/pause", s.recordingAction(r.Pause))
	api.POST("/calls/:id/recording/resume", s.recordingAction(r.Resume))
	api.GET("/history/calls/:id/recording", s.recordingFile)
}

// recordingAction answers the recording as it stands after the change.
func (s *Server) recordingAction(do recordingFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathParam(c, "id")
		if err != nil {
			return err
		}
		rec, err := do(c.Request().Context(), sessionOf(c).Principal, id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, rec)
	}
}

// recordingFile serves a call's recording as audio/wav, with ranges
// (http.ServeContent). ?recordingId= picks one of the call's recordings;
// the latest by default.
func (s *Server) recordingFile(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if s.cfg.Recordings == nil {
		return noRecorder{}.err()
	}
	f, rec, err := s.cfg.Recordings.Open(c.Request().Context(), sessionOf(c).Principal, id, c.QueryParam("recordingId"))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return &calls.Error{Code: calls.CodeInternal, Op: "serve recording", Message: "the recording could not be read", Err: err}
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "audio/wav")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf("inline; filename=%q", "call-"+rec.CallID+"-"+rec.ID+".wav"))
	h.Set("X-Recording-Id", rec.ID)
	http.ServeContent(c.Response(), c.Request(), rec.File, st.ModTime(), f)
	return nil
}

// historyWithRecordings is a call's history with its recordings.
type historyWithRecordings struct {
	calls.CallHistory
	Recordings []calls.Recording `json:"recordings"`
}

// withRecordings adds the call's recordings to its history (none without
// a Recorder).
func (s *Server) withRecordings(ctx context.Context, h calls.CallHistory) (historyWithRecordings, error) {
	out := historyWithRecordings{CallHistory: h, Recordings: []calls.Recording{}}
	if s.cfg.Recordings == nil {
		return out, nil
	}
	recs, err := s.cfg.Recordings.Recordings(ctx, h.Call.ID)
	if err != nil {
		return out, err
	}
	out.Recordings = recs
	return out, nil
}

// noRecorder answers 501 for a switchboard that does not record.
type noRecorder struct{}

func (noRecorder) err() error {
	return calls.Errorf(calls.CodeNotImplemented, "this switchboard does not record calls")
}

func (n noRecorder) Start(context.Context, calls.Principal, string) (calls.Recording, error) {
	return calls.Recording{}, n.err()
}

func (n noRecorder) Stop(context.Context, calls.Principal, string) (calls.Recording, error) {
	return calls.Recording{}, n.err()
}

func (n noRecorder) Pause(context.Context, calls.Principal, string) (calls.Recording, error) {
	return calls.Recording{}, n.err()
}

func (n noRecorder) Resume(context.Context, calls.Principal, string) (calls.Recording, error) {
	return calls.Recording{}, n.err()
}

func (n noRecorder) Recordings(context.Context, string) ([]calls.Recording, error) {
	return nil, n.err()
}

func (noRecorder) Local(context.Context, string, string) (bool, string) { return false, "" }

func (n noRecorder) Open(context.Context, calls.Principal, string, string) (*os.File, calls.Recording, error) {
	return nil, calls.Recording{}, n.err()
}
