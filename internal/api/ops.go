package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// OpenAPI is the OpenAPI 3 description of the HTTP API, served at
// GET /api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

func (s *Server) openAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", OpenAPI)
}

// metrics serves Config.Metrics, behind the admin key unless
// MetricsPublic.
func (s *Server) metrics(c echo.Context) error {
	if !s.cfg.MetricsPublic {
		if err := s.admin(c); err != nil {
			return err
		}
	}
	s.cfg.Metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}
