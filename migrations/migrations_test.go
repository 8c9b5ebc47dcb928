package migrations

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
)

// reserved are migration numbers taken by branches not merged yet, which
// a branch with a later number may skip; delete an entry when its file
// lands.
var reserved = map[int]string{}

// The migrations are numbered from 1 without gaps (but for reserved
// numbers not merged yet), and each has an Up and a Down section, as
// goose reads them.
func TestFiles(t *testing.T) {
	names, err := fs.Glob(FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}
	n := 0
	for _, name := range names {
		n++
		if _, ok := reserved[n]; ok && !strings.HasPrefix(name, fmt.Sprintf("%05d_", n)) {
			n++ // not merged yet
		}
		if want := fmt.Sprintf("%05d_", n); !strings.HasPrefix(name, want) {
			t.Errorf("migration %d is %s, want a name starting %s", n, name, want)
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
