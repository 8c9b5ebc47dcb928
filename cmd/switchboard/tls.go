package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// TLSConfig is serve's HTTPS part: an operator's certificate or one
// obtained by ACME, and the plain HTTP listener that redirects to HTTPS.
type TLSConfig struct {
	CertFile string
	KeyFile  string
	// ACMEDomains, when set, obtain the certificate by ACME.
	ACMEDomains   []string
	ACMEDirectory string
	ACMEEmail     string
	// ACMECache is where the account key and certificates are kept.
	ACMECache string
	// HTTPAddr, when set, is a plain HTTP listener that redirects to
	// HTTPS and answers ACME HTTP-01 challenges.
	HTTPAddr string
}

// On reports whether serve speaks HTTPS.
func (c TLSConfig) On() bool { return c.CertFile != "" || len(c.ACMEDomains) > 0 }

// tlsFlags registers the HTTPS flags; finish checks they go together.
func tlsFlags(fs *flag.FlagSet, cfg *TLSConfig, env func(name, def string) string) (finish func() error) {
	fs.StringVar(&cfg.CertFile, "tls-cert", env("SWITCHBOARD_TLS_CERT", ""), "serve HTTPS on --addr with this PEM certificate (chain), reloaded when the file changes; needs --tls-key (env SWITCHBOARD_TLS_CERT)")
	fs.StringVar(&cfg.KeyFile, "tls-key", env("SWITCHBOARD_TLS_KEY", ""), "the PEM private key of --tls-cert (env SWITCHBOARD_TLS_KEY)")
	domains := fs.String("acme-domain", env("SWITCHBOARD_ACME_DOMAIN", ""), "serve HTTPS on --addr with certificates obtained by ACME for these comma-separated domains (env SWITCHBOARD_ACME_DOMAIN)")
	fs.StringVar(&cfg.ACMEDirectory, "acme-directory", env("SWITCHBOARD_ACME_DIRECTORY", acme.LetsEncryptURL), "the ACME directory URL (env SWITCHBOARD_ACME_DIRECTORY)")
	fs.StringVar(&cfg.ACMEEmail, "acme-email", env("SWITCHBOARD_ACME_EMAIL", ""), "contact address for the ACME account, optional (env SWITCHBOARD_ACME_EMAIL)")
	fs.StringVar(&cfg.ACMECache, "acme-cache", env("SWITCHBOARD_ACME_CACHE", ""), "where the ACME account key and certificates are kept (env SWITCHBOARD_ACME_CACHE; default: switchboard-acme in the user cache directory)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", env("SWITCHBOARD_HTTP_ADDR", ""), "with HTTPS on, a plain HTTP listener that redirects to HTTPS and answers ACME HTTP-01 challenges, as :80; empty is off (env SWITCHBOARD_HTTP_ADDR)")
	return func() error {
		for _, d := range strings.Split(*domains, ",") {
			if d = strings.TrimSpace(d); d != "" {
				cfg.ACMEDomains = append(cfg.ACMEDomains, d)
			}
		}
		switch {
		case (cfg.CertFile == "") != (cfg.KeyFile == ""):
			return errors.New("--tls-cert and --tls-key go together: give both or neither")
		case cfg.CertFile != "" && len(cfg.ACMEDomains) > 0:
			return errors.New("--acme-domain obtains its own certificate: give it or --tls-cert, not both")
		case cfg.HTTPAddr != "" && !cfg.On():
			return errors.New("--http-addr redirects to HTTPS: it needs --tls-cert or --acme-domain")
		case len(cfg.ACMEDomains) > 0 && cfg.ACMEDirectory == "":
			return errors.New("--acme-directory is empty")
		}
		return nil
	}
}

// httpsSetup is what serving HTTPS takes: the listener's TLS configuration
// and what the plain HTTP listener does besides redirecting (ACME HTTP-01).
type httpsSetup struct {
	tls *tls.Config
	// wrapHTTP wraps the redirect handler of the HTTP listener.
	wrapHTTP func(http.Handler) http.Handler
}

// newHTTPS loads the operator's certificate or sets up ACME. acmeHTTP is
// the ACME client's HTTP client (nil: the default).
func newHTTPS(cfg TLSConfig, log *slog.Logger, acmeHTTP *http.Client) (*httpsSetup, error) {
	if cfg.CertFile != "" {
		cf := &certFile{certPath: cfg.CertFile, keyPath: cfg.KeyFile, log: log}
		if err := cf.load(); err != nil {
			return nil, err
		}
		return &httpsSetup{
			tls:      &tls.Config{GetCertificate: cf.GetCertificate, MinVersion: tls.VersionTLS12},
			wrapHTTP: func(h http.Handler) http.Handler { return h },
		}, nil
	}
	dir := cfg.ACMECache
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("no --acme-cache given and no user cache directory: %w", err)
		}
		dir = filepath.Join(cache, "switchboard-acme")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--acme-cache: %w", err)
	}
	mgr := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(cfg.ACMEDomains...),
		Cache:      autocert.DirCache(dir),
		Email:      cfg.ACMEEmail,
		Client:     &acme.Client{DirectoryURL: cfg.ACMEDirectory, HTTPClient: acmeHTTP},
	}
	conf := mgr.TLSConfig()
	conf.MinVersion = tls.VersionTLS12
	log.Info("HTTPS certificates by ACME", "domains", cfg.ACMEDomains, "directory", cfg.ACMEDirectory, "cache", dir)
	wrap := func(redirect http.Handler) http.Handler {
		h := mgr.HTTPHandler(redirect)
		// The host policy sees the name alone: HTTP-01 comes to port 80,
		// but a proxy or a test may put another port in Host.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if host, _, err := net.SplitHostPort(r.Host); err == nil {
				r = r.Clone(r.Context())
				r.Host = host
			}
			h.ServeHTTP(w, r)
		})
	}
	return &httpsSetup{tls: conf, wrapHTTP: wrap}, nil
}

// certFile serves a certificate and key from files, and reloads them when
// either file changes (checked at most once a second, on a handshake). A
// reload that fails keeps the certificate served so far.
type certFile struct {
	certPath, keyPath string
	log               *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certMod  time.Time
	keyMod   time.Time
	lastStat time.Time
}

func (c *certFile) load() error {
	certMod, keyMod, err := c.modTimes()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", c.certPath, c.keyPath, err)
	}
	c.cert, c.certMod, c.keyMod = &cert, certMod, keyMod
	return nil
}

func (c *certFile) modTimes() (cert, key time.Time, err error) {
	ci, err := os.Stat(c.certPath)
	if err != nil {
		return cert, key, fmt.Errorf("--tls-cert: %w", err)
	}
	ki, err := os.Stat(c.keyPath)
	if err != nil {
		return cert, key, fmt.Errorf("--tls-key: %w", err)
	}
	return ci.ModTime(), ki.ModTime(), nil
}

// GetCertificate is tls.Config's hook.
func (c *certFile) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.lastStat) >= time.Second {
		c.lastStat = now
		certMod, keyMod, err := c.modTimes()
		if err == nil && (!certMod.Equal(c.certMod) || !keyMod.Equal(c.keyMod)) {
			err = c.load()
			if err == nil {
				c.log.Info("reloaded the TLS certificate", "cert", c.certPath)
			}
		}
		if err != nil {
			c.log.Warn("the TLS certificate files changed but do not load; serving the previous certificate", "err", err)
		}
	}
	return c.cert, nil
}

// redirectToHTTPS answers every request with a permanent redirect to the
// same host and path over HTTPS on httpsPort.
func redirectToHTTPS(httpsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "this address serves HTTPS only; ask for it by name", http.StatusBadRequest)
			return
		}
		if httpsPort != "443" {
			host = net.JoinHostPort(host, httpsPort)
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// clientTLS is the TLS configuration of a client command for an https://
// --url: the system's roots (which honour SSL_CERT_FILE and SSL_CERT_DIR)
// plus the PEM certificates in caFile, if given. Nil when caFile is empty.
func clientTLS(caFile string) (*tls.Config, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--ca-cert %s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// caCertFlag registers --ca-cert on a client command.
func caCertFlag(fs *flag.FlagSet, file *string, getenv func(string) string) {
	fs.StringVar(file, "ca-cert", getenv("SWITCHBOARD_CA_CERT"), "for an https:// --url: also trust the CA certificates in this PEM file (env SWITCHBOARD_CA_CERT; the system's roots and SSL_CERT_FILE are always trusted)")
}
