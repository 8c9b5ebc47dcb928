package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"

	"github.com/switchboard/switchboard/internal/store"
)

// migrate applies the database migrations and exits; serve also applies
// them at start. Two instances migrating at once take turns (an advisory
// lock).
func migrate(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("database-url", getenv("DATABASE_URL"), "the Postgres URL (env DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *url == "" {
		return errors.New("migrate needs DATABASE_URL or --database-url")
	}
	return store.Migrate(ctx, *url, slog.New(slog.NewTextHandler(stderr, nil)))
}
