package migrations

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// The migrations are numbered from 1 without gaps, and each has an Up and a
// Down section, as goose reads them.
func TestFiles(t *testing.T) {
	names, err := fs.Glob(FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, name := range names {
		if want := fmt.Sprintf("%05d_", i+1); !strings.HasPrefix(name, want) {
			t.Errorf("migration %d is %s, want a name starting %s", i+1, name, want)
		}
		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		up, down := strings.Index(text, "\n-- +goose Up\n"), strings.Index(text, "\n-- +goose Down\n")
		if up < 0 || down < up {
			t.Errorf("%s: want a '-- +goose Up' section, then a '-- +goose Down' section", name)
		}
	}
}
