// Package migrations holds the schema of Switchboard's Postgres history
// store as numbered, plain SQL files, embedded in the binary.
//
// The files follow goose's conventions (NNNNN_name.sql, with "-- +goose Up"
// and "-- +goose Down" sections); package store applies them with goose at
// start, under a Postgres advisory lock, so two switchboards starting
// together do not race. A change to the schema is a new file: files that
// have shipped are never edited.
//
// The package only carries the files. It must not connect to a database or
// know about the domain.
package migrations

import "embed"

// FS holds the migrations, at its root, in version order by name.
//
//go:embed *.sql
var FS embed.FS
