package secrets_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/secrets"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestDotEnvMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		content  string
		wantLine int
	}{
		{"no equals sign", "A=1\n# comment\n\nHUNTER2NOEQUALS\nB=2\n", 4},
		{"unterminated double quote", "A=1\nB=\"open\nC=3\n", 2},
		{"unterminated single quote last line", "A=1\nB=2\nC='open", 3},
		{"bad character in name", "A=1\nBAD$NAME=x\n", 2},
		{"multi-line value then bad line", "A=\"line1\nline2\"\nB=2\n!!=3\n", 4},
		{"first line", "=value\nA=1\n", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, t.TempDir(), ".env", tc.content)
			_, err := secrets.NewLoader(dev, secrets.FromDotEnv(p))
			require.ErrorIs(t, err, secrets.ErrMalformed)
			assert.Contains(t, err.Error(), "line "+strconv.Itoa(tc.wantLine)+":")
			// Nothing of the file's content is echoed. The path is taken out
			// first: t.TempDir embeds the subtest name plus random digits,
			// which can spell a fragment (as "line1" did once).
			msg := strings.ReplaceAll(err.Error(), p, "<path>")
			assert.Contains(t, msg, "dotenv:<path>", "the error names the file")
			for _, frag := range []string{"HUNTER2", "open", "value", "line1", "NAME"} {
				if strings.Contains(tc.content, frag) {
					assert.NotContains(t, msg, frag) // fragments are synthetic, not secrets
				}
			}
		})
	}
}

func TestDotEnv(t *testing.T) {
	t.Parallel()
	vals := synthetic(20, 3)
	p := writeFile(t, t.TempDir(), ".env",
		"# local development only\nexport DB_PASSWORD='"+vals[0]+"'\nAPI_KEY=\""+vals[1]+"\" # comment\nlower_case="+vals[2]+"\nEMPTY=\nLITERAL='a$HOME$b'\n")
	l, err := secrets.NewLoader(dev, secrets.FromDotEnv(p))
	require.NoError(t, err)
	v, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	assert.True(t, v.Equal(secrets.NewValue(vals[0])))
	v, err = l.Get(context.Background(), "API_KEY")
	require.NoError(t, err)
	assert.True(t, v.Equal(secrets.NewValue(vals[1])))
	v, err = l.Get(context.Background(), "LITERAL")
	require.NoError(t, err)
	assert.Equal(t, "a$HOME$b", v.Reveal(), "single quotes keep $ literal")
	_, err = l.Get(context.Background(), "EMPTY")
	require.ErrorIs(t, err, secrets.ErrNotFound, "an empty value counts as absent")
	assert.Equal(t, []secrets.Origin{{Key: "API_KEY", Source: "dotenv:" + p}, {Key: "DB_PASSWORD", Source: "dotenv:" + p}, {Key: "LITERAL", Source: "dotenv:" + p}}, l.Provenance())

	_, err = secrets.NewLoader(dev, secrets.FromDotEnv(filepath.Join(t.TempDir(), "absent.env")))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestProductionGuard(t *testing.T) {
	// Not parallel: sets APP_ENV.
	p := writeFile(t, t.TempDir(), ".env", "A=1\n")
	tests := []struct {
		name    string
		appEnv  string
		mode    secrets.Mode
		refused bool
	}{
		{"APP_ENV=production", "production", secrets.ModeAuto, true},
		{"APP_ENV=Production", " Production ", secrets.ModeAuto, true},
		{"APP_ENV=staging", "staging", secrets.ModeAuto, false},
		{"APP_ENV unset", "", secrets.ModeAuto, false},
		{"explicit production", "", secrets.ModeProduction, true},
		{"explicit development overrides APP_ENV", "production", secrets.ModeDevelopment, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("APP_ENV", tc.appEnv)
			_, err := secrets.NewLoader(&secrets.Options{Mode: tc.mode}, secrets.FromEnv(), secrets.FromDotEnv(p))
			if tc.refused {
				require.ErrorIs(t, err, secrets.ErrProduction)
				assert.Contains(t, err.Error(), "dotenv:"+p)
			} else {
				require.NoError(t, err)
			}
			// The environment itself is always allowed.
			_, err = secrets.NewLoader(&secrets.Options{Mode: tc.mode}, secrets.FromEnv())
			require.NoError(t, err)
		})
	}
}

func TestEnvFirstHitWins(t *testing.T) {
	// Not parallel: sets environment variables.
	vals := synthetic(21, 2)
	t.Setenv("PHIGUARD_TEST_TOKEN", vals[0])
	dir, _ := dirWith(t, map[string]string{"PHIGUARD_TEST_TOKEN": vals[1], "PHIGUARD_TEST_ONLY_FILE": vals[1]})
	l, err := secrets.NewLoader(dev, secrets.FromEnv(), dir)
	require.NoError(t, err)
	v, err := l.Get(context.Background(), "PHIGUARD_TEST_TOKEN")
	require.NoError(t, err)
	assert.True(t, v.Equal(secrets.NewValue(vals[0])))
	_, err = l.Get(context.Background(), "PHIGUARD_TEST_ONLY_FILE")
	require.NoError(t, err)
	got := l.Provenance()
	require.Len(t, got, 2)
	assert.Equal(t, "env", got[1].Source)
	assert.Equal(t, dir.Name(), got[0].Source)
}

func TestDirRotation(t *testing.T) {
	t.Parallel()
	vals := synthetic(22, 3)
	src, dir := dirWith(t, map[string]string{"db-password": vals[0] + "\r\n", "API_KEY": vals[1]})
	l, err := secrets.NewLoader(dev, src)
	require.NoError(t, err)
	var cfg struct {
		DB  []byte        `secret:"DB_PASSWORD,required"`
		API secrets.Value `secret:"API_KEY,required"`
	}
	require.NoError(t, l.Bind(context.Background(), &cfg))
	assert.Equal(t, vals[0], string(cfg.DB), "trailing CRLF dropped")
	var changed []string
	l.OnChange(func(c secrets.Change) { changed = append(changed, c.Key) })

	// The CSI driver rewrites the file in place.
	writeFile(t, dir, "db-password", vals[2])
	require.NoError(t, l.Refresh(context.Background()))
	assert.Equal(t, []string{"DB_PASSWORD"}, changed)
	v, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	assert.True(t, v.Equal(secrets.NewValue(vals[2])))
	require.NoError(t, l.Check(context.Background()))

	// The volume goes away: not ready.
	require.NoError(t, os.RemoveAll(dir))
	require.Error(t, l.Check(context.Background()))
}

func TestDirBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "A_DIR"), 0o700))
	big := strings.Repeat("x", 1<<20+1)
	writeFile(t, dir, "TOO_BIG", big)
	l, err := secrets.NewLoader(dev, secrets.FromDir(dir))
	require.NoError(t, err)
	for _, key := range []string{"A_DIR", "TOO_BIG"} {
		_, err = l.Get(context.Background(), key)
		require.ErrorIs(t, err, secrets.ErrMalformed, key)
		assert.Contains(t, err.Error(), key)
	}
}

func TestInvalidKeys(t *testing.T) {
	t.Parallel()
	l, err := secrets.NewLoader(dev, secrets.FromEnv())
	require.NoError(t, err)
	for _, key := range []string{"", "db_password", "DB-PASSWORD", "1DB", "_DB", "DB PASSWORD", "../ETC", "DB.PASSWORD", strings.Repeat("A", 128), "É"} {
		_, err := l.Get(context.Background(), key)
		require.ErrorIs(t, err, secrets.ErrInvalidKey, "key %q", key)
		assert.False(t, secrets.ValidKey(key))
	}
	for _, key := range []string{"A", "DB_PASSWORD", "K8S__X_", strings.Repeat("A", 127)} {
		assert.True(t, secrets.ValidKey(key), key)
	}
	assert.Equal(t, "DB-PASSWORD", secrets.VaultName("DB_PASSWORD"))
}

func TestNewLoaderOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    *secrets.Options
		sources []secrets.Source
	}{
		{"no sources", dev, nil},
		{"nil source", dev, []secrets.Source{nil}},
		{"negative parallelism", &secrets.Options{Parallelism: -1}, []secrets.Source{secrets.FromEnv()}},
		{"jitter above 1", &secrets.Options{RefreshJitter: 1.5}, []secrets.Source{secrets.FromEnv()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := secrets.NewLoader(tc.opts, tc.sources...)
			require.Error(t, err)
		})
	}
}

// refreshLoops counts goroutines running the loader's refresh loop.
func refreshLoops() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "secrets.(*Loader).refreshLoop")
}

func TestRefresherStops(t *testing.T) {
	// Not parallel, so no other test's refresher is running.
	require.Zero(t, refreshLoops())
	// waitLoops waits until n refresh goroutines run (a goroutine just
	// created may not show in a stack dump yet).
	waitLoops := func(t *testing.T, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for refreshLoops() != n && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		require.Equal(t, n, refreshLoops(), "refresh goroutines")
	}
	opts := &secrets.Options{Mode: secrets.ModeDevelopment, RefreshInterval: time.Millisecond}

	t.Run("ctx cancel", func(t *testing.T) {
		l, err := secrets.NewLoader(opts, secrets.FromEnv())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		require.NoError(t, l.Start(ctx))
		defer func() { _ = l.Close() }()
		waitLoops(t, 1)
		cancel()
		waitLoops(t, 0)
	})
	t.Run("Close", func(t *testing.T) {
		l, err := secrets.NewLoader(opts, secrets.FromEnv())
		require.NoError(t, err)
		require.NoError(t, l.Start(context.Background()))
		waitLoops(t, 1)
		require.NoError(t, l.Close())
		require.Zero(t, refreshLoops(), "Close waits for the refresher")
		require.NoError(t, l.Close(), "Close is idempotent")
		require.ErrorIs(t, l.Start(context.Background()), secrets.ErrClosed)
	})
	t.Run("no interval starts nothing", func(t *testing.T) {
		l, err := secrets.NewLoader(dev, secrets.FromEnv())
		require.NoError(t, err)
		require.NoError(t, l.Start(context.Background()))
		require.Zero(t, refreshLoops())
	})
}
