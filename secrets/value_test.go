package secrets_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/brianvoe/gofakeit/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/secrets"
)

// requireNoLeak fails if out contains any of the secrets, or any 8-byte
// piece of one, raw or as hex (dumpers such as go-spew print []byte as a
// hex dump split over lines). It reports only where and which secret (by
// index), never the secret or the output, so a failing run leaks neither.
func requireNoLeak(t *testing.T, where, out string, secretValues ...string) {
	t.Helper()
	if i := leakIndex(out, secretValues...); i >= 0 {
		t.Fatalf("%s: output contains (a piece of) secret #%d", where, i)
	}
}

func leakIndex(out string, secretValues ...string) int {
	const window = 8
	for i, s := range secretValues {
		if s == "" {
			continue
		}
		if strings.Contains(out, s) {
			return i
		}
		for j := 0; j+window <= len(s); j++ {
			piece := s[j : j+window]
			if strings.Contains(out, piece) || strings.Contains(out, fmt.Sprintf("% x", piece)) || strings.Contains(out, fmt.Sprintf("%x", piece)) {
				return i
			}
		}
	}
	return -1
}

// TestLeakDetector proves the detector sees the forms a leak takes.
func TestLeakDetector(t *testing.T) {
	t.Parallel()
	s := synthetic(98, 1)
	type plain struct{ B []byte }
	rec := &recordingT{}
	assert.Equal(rec, plain{[]byte(s[0])}, plain{[]byte("other")})
	assert.Equal(t, 0, leakIndex(rec.out.String(), s...), "a go-spew hex dump is caught")
	assert.Equal(t, 0, leakIndex(fmt.Sprintf("%x", s[0]), s...))
	assert.Equal(t, -1, leakIndex(secrets.Redacted, s...))
}

// synthetic returns n distinct synthetic secrets from a seeded generator.
func synthetic(seed uint64, n int) []string {
	f := gofakeit.New(seed)
	out := make([]string, n)
	for i := range out {
		out[i] = f.Password(true, true, true, false, false, 24)
	}
	return out
}

type inner struct {
	Token secrets.Value
	token secrets.Value
}

type xmlConfig struct {
	XMLName xml.Name      `xml:"config"`
	Attr    secrets.Value `xml:"pw,attr"`
	PW      secrets.Value `xml:"pw"`
}

type leakConfig struct {
	DBPassword secrets.Value            `json:"db_password" xml:"db_password"`
	APIKey     *secrets.Value           `json:"api_key"`
	Keys       []secrets.Value          `json:"keys"`
	ByName     map[string]secrets.Value `json:"by_name"`
	Nested     inner                    `json:"nested"`
	private    secrets.Value
	Host       string `json:"host"`
}

func newLeakConfig(s []string) leakConfig {
	api := secrets.NewValue(s[1])
	return leakConfig{
		DBPassword: secrets.NewValue(s[0]),
		APIKey:     &api,
		Keys:       []secrets.Value{secrets.NewValue(s[2]), secrets.NewValueBytes([]byte(s[3]))},
		ByName:     map[string]secrets.Value{"signing": secrets.NewValue(s[4])},
		Nested:     inner{Token: secrets.NewValue(s[5]), token: secrets.NewValue(s[6])},
		private:    secrets.NewValue(s[7]),
		Host:       "db.internal",
	}
}

// recordingT captures what a failing testify assertion would print.
type recordingT struct{ out strings.Builder }

func (r *recordingT) Errorf(format string, args ...any) { fmt.Fprintf(&r.out, format, args...) }

func TestLeak(t *testing.T) {
	t.Parallel()
	vals := synthetic(1, 8)
	cfg := newLeakConfig(vals)

	t.Run("fmt verbs", func(t *testing.T) {
		t.Parallel()
		verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%-8v", "% x", "%#x", "%T", "%p"}
		for _, verb := range verbs {
			for _, arg := range []any{cfg, &cfg, cfg.DBPassword, cfg.APIKey, cfg.Keys, cfg.ByName, cfg.Nested, []any{cfg}} {
				requireNoLeak(t, "fmt "+verb, fmt.Sprintf(verb, arg), vals...)
			}
		}
		requireNoLeak(t, "fmt.Sprint", fmt.Sprint(cfg, &cfg, cfg.Keys), vals...)
		requireNoLeak(t, "fmt.Sprintln", fmt.Sprintln(cfg, &cfg), vals...)
		requireNoLeak(t, "errorf", fmt.Errorf("config: %v", cfg).Error(), vals...)
	})

	t.Run("reflection and testify diffs", func(t *testing.T) {
		t.Parallel()
		requireNoLeak(t, "reflect.Value", fmt.Sprintf("%v %+v %#v", reflect.ValueOf(cfg), reflect.ValueOf(cfg.Nested), reflect.ValueOf(&cfg)), vals...)
		// A failing assertion on a config prints a go-spew dump that follows
		// pointers and skips methods: it must find no bytes to print.
		other := newLeakConfig(synthetic(99, 8))
		rec := &recordingT{}
		assert.Equal(rec, cfg, other)
		assert.Equal(rec, &cfg, &other)
		assert.Equal(rec, cfg.Keys, other.Keys)
		require.NotEmpty(t, rec.out.String(), "the assertions failed and printed")
		requireNoLeak(t, "testify diff", rec.out.String(), vals...)
	})

	t.Run("slog", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		for _, h := range []slog.Handler{
			slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
			slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}),
		} {
			log := slog.New(h)
			log.Info("config", "cfg", cfg, "ptr", &cfg, "pw", cfg.DBPassword, slog.Any("keys", cfg.Keys), slog.Any("map", cfg.ByName))
			log.With("pw", cfg.DBPassword).WithGroup("g").Debug("x", "nested", cfg.Nested, "api", cfg.APIKey)
		}
		require.NotZero(t, buf.Len())
		requireNoLeak(t, "slog", buf.String(), vals...)
	})

	t.Run("encoders", func(t *testing.T) {
		t.Parallel()
		j, err := json.Marshal(cfg)
		require.NoError(t, err)
		requireNoLeak(t, "json", string(j), vals...)
		assert.Contains(t, string(j), `"db_password":"[REDACTED]"`)

		ji, err := json.MarshalIndent(&cfg, "", " ")
		require.NoError(t, err)
		requireNoLeak(t, "json indent", string(ji), vals...)

		x, err := xml.Marshal(xmlConfig{PW: cfg.DBPassword, Attr: cfg.DBPassword})
		require.NoError(t, err)
		requireNoLeak(t, "xml", string(x), vals...)

		var g bytes.Buffer
		require.NoError(t, gob.NewEncoder(&g).Encode(cfg))
		requireNoLeak(t, "gob", g.String(), vals...)
		var back leakConfig
		err = gob.NewDecoder(&g).Decode(&back)
		require.ErrorIs(t, err, secrets.ErrNotDecodable)
	})

	t.Run("panic", func(t *testing.T) {
		t.Parallel()
		for i, payload := range []any{cfg, &cfg, fmt.Sprintf("bad config %v", cfg), fmt.Errorf("bad config: %+v", cfg), cfg.DBPassword} {
			msg := func() (msg string) {
				defer func() { msg = fmt.Sprint(recover()) }()
				panic(payload)
			}()
			requireNoLeak(t, fmt.Sprintf("panic payload %d", i), msg, vals...)
		}
	})

	t.Run("bind errors and logs", func(t *testing.T) {
		t.Parallel()
		// Secrets land in fields that cannot hold them, and a malformed
		// .env line holds one: no error or log line may echo them.
		dir := t.TempDir()
		env := filepath.Join(dir, ".env")
		content := "PORT=" + vals[0] + "\nDEBUG=" + vals[1] + "\nTIMEOUT=" + vals[2] + "\nRATIO=" + vals[3] + "\n"
		require.NoError(t, os.WriteFile(env, []byte(content), 0o600))
		var logs bytes.Buffer
		l, err := secrets.NewLoader(&secrets.Options{Mode: secrets.ModeDevelopment, Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
			secrets.FromDotEnv(env))
		require.NoError(t, err)
		var dst struct {
			Port    int           `secret:"PORT,required"`
			Debug   bool          `secret:"DEBUG"`
			Timeout time.Duration `secret:"TIMEOUT"`
			Ratio   uint8         `secret:"RATIO"`
			Missing secrets.Value `secret:"MISSING_ONE,required"`
		}
		err = l.Bind(context.Background(), &dst)
		require.Error(t, err)
		requireNoLeak(t, "bind error", err.Error(), vals...)
		requireNoLeak(t, "bind error %+v", fmt.Sprintf("%+v", err), vals...)
		requireNoLeak(t, "loader logs", logs.String(), vals...)
		assert.ErrorIs(t, err, secrets.ErrParse)
		assert.ErrorIs(t, err, secrets.ErrNotFound)

		bad := filepath.Join(dir, "bad.env")
		require.NoError(t, os.WriteFile(bad, []byte("OK=1\nTOKEN=\""+vals[4]+"\n"), 0o600))
		_, err = secrets.NewLoader(&secrets.Options{Mode: secrets.ModeDevelopment}, secrets.FromDotEnv(bad))
		require.ErrorIs(t, err, secrets.ErrMalformed)
		requireNoLeak(t, "dotenv error", err.Error(), vals...)
	})
}

func TestValue(t *testing.T) {
	t.Parallel()
	s := synthetic(2, 2)
	v := secrets.NewValue(s[0])

	assert.Equal(t, s[0], v.Reveal())
	assert.Equal(t, len(s[0]), v.Len())
	assert.False(t, v.IsZero())
	assert.True(t, secrets.Value{}.IsZero())
	assert.Empty(t, secrets.Value{}.Reveal())
	assert.Nil(t, secrets.Value{}.Bytes())

	b := v.Bytes()
	require.Equal(t, s[0], string(b))
	clear(b) // wiping the caller's copy leaves the Value intact
	assert.Equal(t, s[0], v.Reveal())

	src := []byte(s[1])
	w := secrets.NewValueBytes(src)
	clear(src)
	assert.Equal(t, s[1], w.Reveal())

	assert.True(t, v.Equal(secrets.NewValue(s[0])))
	assert.False(t, v.Equal(w))
	assert.True(t, secrets.Value{}.Equal(secrets.NewValue("")))

	for _, got := range []string{v.String(), v.GoString(), fmt.Sprintf("%q", v)} {
		assert.Equal(t, secrets.Redacted, got)
	}
	txt, err := v.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, secrets.Redacted, string(txt))
	assert.Equal(t, secrets.Redacted, v.LogValue().String())
	var dec secrets.Value
	assert.True(t, errors.Is(dec.GobDecode([]byte(secrets.Redacted)), secrets.ErrNotDecodable))
}
