package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard/switchboard/internal/api"
	"github.com/switchboard/switchboard/internal/calls"
)

// token mints a token locally with the admin key, the same way
// POST /api/tokens does, without a running server.
func token(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "a Communication Services user id (communicationUserId)")
	teams := fs.String("teams", "", "a Microsoft 365 (Teams) user id, instead of --user")
	phone := fs.String("phone", "", "an E.164 phone number, instead of --user (role caller)")
	role := fs.String("role", "agent", "agent, supervisor or caller")
	name := fs.String("name", "", "the display name (default: the id)")
	ttl := fs.Duration("ttl", api.DefaultTokenTTL, "how long the token is valid")
	adminKey := fs.String("admin-key", getenv("SWITCHBOARD_ADMIN_KEY"), "the server's admin key (env SWITCHBOARD_ADMIN_KEY; default: the key serve generated and keeps in --data-dir)")
	dataDir := fs.String("data-dir", cmp.Or(getenv("SWITCHBOARD_DATA_DIR"), DefaultDataDir), "serve's data directory, for the admin key it generated (env SWITCHBOARD_DATA_DIR)")
	base := fs.String("url", getenv("SWITCHBOARD_URL"), "also print the console link for the token, on this base URL (e.g. http://127.0.0.1:8080) (env SWITCHBOARD_URL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	var id calls.Identifier
	switch {
	case *user != "" && *teams == "" && *phone == "":
		id = calls.CommunicationUser(*user)
	case *teams != "" && *user == "" && *phone == "":
		id = calls.TeamsUser(*teams)
	case *phone != "" && *user == "" && *teams == "":
		id = calls.PhoneNumber(*phone)
	default:
		return errors.New("token needs exactly one of --user, --teams and --phone")
	}
	if *adminKey == "" {
		b, err := os.ReadFile(filepath.Join(*dataDir, adminKeyFile))
		if err != nil {
			return fmt.Errorf("token needs the server's admin key: set SWITCHBOARD_ADMIN_KEY or --admin-key, or point --data-dir at the directory where serve keeps the key it generated (%w)", err)
		}
		*adminKey = strings.TrimSpace(string(b))
	}
	if *ttl <= 0 || *ttl%time.Second != 0 {
		return fmt.Errorf("--ttl %s must be a positive number of seconds", *ttl)
	}
	display := *name
	if display == "" {
		display = id.ID
	}
	minted, err := api.NewTokens(*adminKey, nil).Mint(api.TokenRequest{
		Identity: id, DisplayName: display, Role: calls.Role(*role), TTLSeconds: int(*ttl / time.Second),
	})
	if err != nil {
		return fmt.Errorf("mint token: %w", err)
	}
	fmt.Fprintln(stdout, minted.Token)
	if *base != "" {
		u, err := url.Parse(*base)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("--url %q is not an absolute URL", *base)
		}
		u.Path = "/"
		u.RawQuery = url.Values{"token": {minted.Token}}.Encode()
		fmt.Fprintln(stdout, u.String())
	}
	return nil
}
