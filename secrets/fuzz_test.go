package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/phiguard/phiguard/secrets"
)

// FuzzDotEnv: whatever the file holds, NewLoader either accepts it or
// fails with a message that names the line and nothing of the content.
func FuzzDotEnv(f *testing.F) {
	for _, s := range []string{
		"A=1\nB=2\n",
		"A=\"multi\nline\"\nB='x'\n",
		"export A=1 # comment\n",
		"HUNTER2\n",
		"A=\"open\n",
		"A: yaml style\n",
		"=x\n",
		"\r\nA=1\r\n",
	} {
		f.Add([]byte(s))
	}
	want := regexp.MustCompile(`^secrets: dotenv:[^:]+: line [1-9][0-9]*: malformed source: entry is not KEY=VALUE or has an unterminated quote \(content withheld\)$`)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content []byte) {
		p := filepath.Join(dir, "fuzz.env")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := secrets.NewLoader(&secrets.Options{Mode: secrets.ModeDevelopment}, secrets.FromDotEnv(p))
		if err == nil {
			return
		}
		if !errors.Is(err, secrets.ErrMalformed) {
			t.Fatalf("unexpected error kind")
		}
		if !want.MatchString(err.Error()) {
			t.Fatalf("error message is not the fixed template (not printed: it could hold file content)")
		}
	})
}

// FuzzBindParse: a value that does not parse gives an error whose text does
// not depend on the value, so it cannot carry any of it.
func FuzzBindParse(f *testing.F) {
	for _, s := range []string{"abc", "8080", "-1", "99999999999999999999", "1h", "true", "0x", " 12 ", "NaN"} {
		f.Add(s)
	}
	type target struct {
		Port    int16   `secret:"PORT"`
		Count   uint32  `secret:"PORT"`
		Ratio   float32 `secret:"PORT"`
		Enabled bool    `secret:"PORT"`
	}
	// The messages a field may produce: bad syntax or out of range.
	allowed := map[string]bool{}
	for _, v := range []string{"x", "99999999999999999999999999", "-99999999999999999999999999", "-1", "1e99"} {
		for _, e := range bindFromFile(f.TempDir(), v, &target{}) {
			allowed[e.Error()] = true
		}
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, e := range bindFromFile(t.TempDir(), v, &target{}) {
			if !allowed[e.Error()] {
				// The message is not printed: it could hold the value.
				t.Fatalf("error message depends on the value (value withheld)")
			}
		}
	})
}

// bindFromFile binds dst from a directory holding v as PORT and returns the
// per-field errors.
func bindFromFile(dir, v string, dst any) []error {
	if err := os.WriteFile(filepath.Join(dir, "PORT"), []byte(v), 0o600); err != nil {
		return []error{err}
	}
	l, err := secrets.NewLoader(&secrets.Options{Mode: secrets.ModeDevelopment}, secrets.FromDir(dir))
	if err != nil {
		return []error{err}
	}
	err = l.Bind(context.Background(), dst)
	var be *secrets.BindError
	if errors.As(err, &be) {
		return be.Errs
	}
	if err != nil {
		return []error{err}
	}
	return nil
}
