// Package web holds the browser console's files, embedded into the binary
// and served at /. It has no code beyond exposing them as an fs.FS.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// Console returns the console's files, rooted so that index.html is at /.
func Console() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}
