package secrets_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/secrets"
)

var dev = &secrets.Options{Mode: secrets.ModeDevelopment}

func newVaultLoader(t *testing.T, fv *fakeVault, opts *secrets.Options, kvOpts *secrets.KeyVaultOptions, more ...secrets.Source) *secrets.Loader {
	t.Helper()
	l, err := secrets.NewLoader(opts, append([]secrets.Source{secrets.FromKeyVault(fv.client(t), kvOpts)}, more...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// dirWith returns a FromDir source holding the given files.
func dirWith(t *testing.T, files map[string]string) (secrets.Source, string) {
	t.Helper()
	dir := t.TempDir()
	for name, v := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600))
	}
	return secrets.FromDir(dir), dir
}

func TestKeyVaultGet(t *testing.T) {
	t.Parallel()
	past := time.Now().Add(-time.Hour)
	future := time.Now().Add(time.Hour)
	vals := synthetic(3, 2)
	vaultSource := "keyvault:phiguard-test.vault.azure.net"

	tests := []struct {
		name       string
		arrange    func(fv *fakeVault)
		wantFound  bool   // the vault's value is returned
		wantSource string // source of the fallback, when not the vault
		wantGets   int
	}{
		{name: "found", arrange: func(fv *fakeVault) { fv.set("DB-PASSWORD", vals[0]) }, wantFound: true, wantGets: 1},
		{name: "not found 404", arrange: func(*fakeVault) {}, wantSource: "dir", wantGets: 1},
		{name: "disabled", arrange: func(fv *fakeVault) {
			fv.set("DB-PASSWORD", vals[0])
			fv.update("DB-PASSWORD", func(s *fakeSecret) { s.enabled = false })
		}, wantSource: "dir", wantGets: 1},
		{name: "disabled 403 SecretDisabled", arrange: func(fv *fakeVault) {
			fv.set("DB-PASSWORD", vals[0])
			fv.failNextCode("DB-PASSWORD", http.StatusForbidden, "SecretDisabled")
		}, wantSource: "dir", wantGets: 1},
		{name: "expired", arrange: func(fv *fakeVault) {
			fv.set("DB-PASSWORD", vals[0])
			fv.update("DB-PASSWORD", func(s *fakeSecret) { s.expires = &past })
		}, wantSource: "dir", wantGets: 1},
		{name: "not yet valid", arrange: func(fv *fakeVault) {
			fv.set("DB-PASSWORD", vals[0])
			fv.update("DB-PASSWORD", func(s *fakeSecret) { s.notBefore = &future })
		}, wantSource: "dir", wantGets: 1},
		{name: "429 then success", arrange: func(fv *fakeVault) {
			fv.set("DB-PASSWORD", vals[0])
			fv.failNext("DB-PASSWORD", http.StatusTooManyRequests, http.StatusTooManyRequests)
		}, wantFound: true, wantGets: 3},
		{name: "500 then success", arrange: func(fv *fakeVault) {
			fv.set("DB-PASSWORD", vals[0])
			fv.failNext("DB-PASSWORD", http.StatusInternalServerError)
		}, wantFound: true, wantGets: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fv := newFakeVault()
			tc.arrange(fv)
			dir, dirPath := dirWith(t, map[string]string{"db-password": vals[1] + "\n"})
			l := newVaultLoader(t, fv, dev, nil, dir)

			v, err := l.Get(context.Background(), "DB_PASSWORD")
			require.NoError(t, err)
			origins := l.Provenance()
			require.Len(t, origins, 1)
			if tc.wantFound {
				assert.True(t, v.Equal(secrets.NewValue(vals[0])), "want the vault's value")
				assert.Equal(t, vaultSource, origins[0].Source)
			} else {
				assert.True(t, v.Equal(secrets.NewValue(vals[1])), "want the mounted file's value")
				assert.Equal(t, "dir:"+dirPath, origins[0].Source)
			}
			assert.Equal(t, tc.wantGets, fv.getCount("DB-PASSWORD"))

			// Cached: a second Get makes no request.
			_, err = l.Get(context.Background(), "DB_PASSWORD")
			require.NoError(t, err)
			assert.Equal(t, tc.wantGets, fv.getCount("DB-PASSWORD"))
		})
	}
}

func TestKeyVaultNotFoundAnywhere(t *testing.T) {
	t.Parallel()
	fv := newFakeVault()
	l := newVaultLoader(t, fv, dev, nil, secrets.FromEnv())
	_, err := l.Get(context.Background(), "PHIGUARD_TEST_ABSENT")
	require.ErrorIs(t, err, secrets.ErrNotFound)
	var ke *secrets.KeyError
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, "PHIGUARD_TEST_ABSENT", ke.Key)
	assert.Contains(t, err.Error(), "PHIGUARD_TEST_ABSENT")
	assert.Contains(t, err.Error(), "keyvault")
	assert.Contains(t, err.Error(), "env")
}

func TestKeyVaultOutage(t *testing.T) {
	t.Parallel()
	vals := synthetic(4, 1)
	fv := newFakeVault()
	fv.set("API-KEY", vals[0])
	fv.setDown(true)
	l := newVaultLoader(t, fv, dev, nil)

	_, err := l.Get(context.Background(), "API_KEY")
	require.Error(t, err)
	assert.NotErrorIs(t, err, secrets.ErrNotFound)
	var ve *secrets.VaultError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, http.StatusServiceUnavailable, ve.StatusCode)
	var re *azcore.ResponseError
	require.ErrorAs(t, err, &re, "the SDK error stays reachable")
	assert.Contains(t, err.Error(), "API_KEY")
	assert.Contains(t, err.Error(), "phiguard-test.vault.azure.net")
	assert.Contains(t, err.Error(), "503")
	requireNoLeak(t, "outage error", err.Error(), vals...)
	assert.Equal(t, 1+int(fastRetry.MaxRetries), fv.getCount("API-KEY"), "azcore's retry policy retried the 503")

	require.Error(t, l.Check(context.Background()), "an unreachable vault is not ready")

	// The vault comes back: nothing was cached from the failure.
	fv.setDown(false)
	v, err := l.Get(context.Background(), "API_KEY")
	require.NoError(t, err)
	assert.True(t, v.Equal(secrets.NewValue(vals[0])))
	require.NoError(t, l.Check(context.Background()))
}

func TestKeyVaultParallelism(t *testing.T) {
	t.Parallel()
	for _, p := range []int{1, 4} {
		t.Run("parallelism "+string(rune('0'+p)), func(t *testing.T) {
			t.Parallel()
			fv := newFakeVault()
			fv.delay = 15 * time.Millisecond
			for i := range 12 {
				fv.set("K"+string(rune('A'+i)), "v")
			}
			l := newVaultLoader(t, fv, &secrets.Options{Mode: secrets.ModeDevelopment, Parallelism: p}, nil)
			var dst struct {
				A, B, C, D, E, F, G, H, I, J, K, L string `secret:"-"`
				KA                                 string `secret:"KA,required"`
				KB                                 string `secret:"KB,required"`
				KC                                 string `secret:"KC,required"`
				KD                                 string `secret:"KD,required"`
				KE                                 string `secret:"KE,required"`
				KF                                 string `secret:"KF,required"`
				KG                                 string `secret:"KG,required"`
				KH                                 string `secret:"KH,required"`
				KI                                 string `secret:"KI,required"`
				KJ                                 string `secret:"KJ,required"`
				KK                                 string `secret:"KK,required"`
				KL                                 string `secret:"KL,required"`
			}
			require.NoError(t, l.Bind(context.Background(), &dst))
			assert.Equal(t, 12, fv.totalGets())
			assert.LessOrEqual(t, fv.peakInflight(), p, "never more GETs in flight than the bound")
			if p > 1 {
				assert.Greater(t, fv.peakInflight(), 1, "GETs ran in parallel")
			}
		})
	}
}

func TestKeyVaultRotation(t *testing.T) {
	t.Parallel()
	vals := synthetic(5, 3)
	fv := newFakeVault()
	fv.set("DB-PASSWORD", vals[0])
	fv.set("API-KEY", vals[1])
	l := newVaultLoader(t, fv, dev, nil)

	var cfg struct {
		DB  secrets.Value `secret:"DB_PASSWORD,required"`
		API secrets.Value `secret:"API_KEY,required"`
	}
	require.NoError(t, l.Bind(context.Background(), &cfg))
	var mu sync.Mutex
	var changes []secrets.Change
	l.OnChange(func(c secrets.Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	})

	// Nothing changed: the listing is enough, no GET.
	require.NoError(t, l.Refresh(context.Background()))
	assert.Equal(t, 1, fv.getCount("DB-PASSWORD"))
	assert.Equal(t, 1, fv.getCount("API-KEY"))
	assert.Empty(t, changes)

	fv.set("DB-PASSWORD", vals[2]) // rotation: new version
	require.NoError(t, l.Refresh(context.Background()))
	assert.Equal(t, 2, fv.getCount("DB-PASSWORD"), "the rotated secret is fetched again")
	assert.Equal(t, 1, fv.getCount("API-KEY"), "the unchanged one is not")
	require.Len(t, changes, 1)
	assert.Equal(t, "DB_PASSWORD", changes[0].Key)
	assert.True(t, changes[0].Value.Equal(secrets.NewValue(vals[2])))
	v, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	assert.True(t, v.Equal(secrets.NewValue(vals[2])))

	// Disabled in the vault: the key can no longer be resolved; the last
	// value is kept and the refresh reports it.
	fv.update("API-KEY", func(s *fakeSecret) { s.enabled = false })
	err = l.Refresh(context.Background())
	require.ErrorIs(t, err, secrets.ErrNotFound)
	assert.Contains(t, err.Error(), "API_KEY")
	v, err = l.Get(context.Background(), "API_KEY")
	require.NoError(t, err)
	assert.True(t, v.Equal(secrets.NewValue(vals[1])))
}

func TestKeyVaultRefreshWithoutListPermission(t *testing.T) {
	t.Parallel()
	vals := synthetic(6, 2)
	fv := newFakeVault()
	fv.set("DB-PASSWORD", vals[0])
	fv.setListDenied(true)
	l := newVaultLoader(t, fv, dev, nil)
	_, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	fv.set("DB-PASSWORD", vals[1])
	require.NoError(t, l.Refresh(context.Background()))
	assert.Equal(t, 2, fv.getCount("DB-PASSWORD"))
	v, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	assert.True(t, v.Equal(secrets.NewValue(vals[1])))
	require.NoError(t, l.Check(context.Background()), "403 on list still proves the vault reachable")
}

func TestKeyVaultRefreshOutageKeepsValues(t *testing.T) {
	t.Parallel()
	vals := synthetic(7, 1)
	fv := newFakeVault()
	fv.set("DB-PASSWORD", vals[0])
	l := newVaultLoader(t, fv, dev, nil)
	_, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	fv.setDown(true)
	err = l.Refresh(context.Background())
	require.Error(t, err)
	requireNoLeak(t, "refresh error", err.Error(), vals...)
	v, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	assert.True(t, v.Equal(secrets.NewValue(vals[0])))
}

func TestKeyVaultBackgroundRefresh(t *testing.T) {
	t.Parallel()
	vals := synthetic(8, 2)
	fv := newFakeVault()
	fv.set("DB-PASSWORD", vals[0])
	l := newVaultLoader(t, fv, &secrets.Options{Mode: secrets.ModeDevelopment, RefreshInterval: 5 * time.Millisecond}, nil)
	_, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	changed := make(chan secrets.Change, 1)
	l.OnChange(func(c secrets.Change) {
		select {
		case changed <- c:
		default:
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, l.Start(ctx))
	require.Error(t, l.Start(ctx), "Start twice")
	fv.set("DB-PASSWORD", vals[1])
	select {
	case c := <-changed:
		assert.Equal(t, "DB_PASSWORD", c.Key)
	case <-time.After(30 * time.Second):
		t.Fatal("rotation not picked up by the background refresh")
	}
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.Check(context.Background()), secrets.ErrClosed)
	_, err = l.Get(context.Background(), "DB_PASSWORD")
	require.ErrorIs(t, err, secrets.ErrClosed)
}

func TestKeyVaultNameMapping(t *testing.T) {
	t.Parallel()
	vals := synthetic(9, 2)
	fv := newFakeVault()
	fv.set("billing-DB-PASSWORD", vals[0])
	fv.set("legacy-signing-key", vals[1])
	l := newVaultLoader(t, fv, dev, &secrets.KeyVaultOptions{
		Prefix: "billing-",
		Names:  map[string]string{"SIGNING_KEY": "legacy-signing-key"},
	})
	var cfg struct {
		DB   secrets.Value `secret:"DB_PASSWORD,required"`
		Sign secrets.Value `secret:"SIGNING_KEY,required"`
	}
	require.NoError(t, l.Bind(context.Background(), &cfg))
	assert.True(t, cfg.DB.Equal(secrets.NewValue(vals[0])))
	assert.True(t, cfg.Sign.Equal(secrets.NewValue(vals[1])))
	assert.Equal(t, 1, fv.getCount("billing-db-password"), "names are case-insensitive")
}

func TestKeyVaultNameCollisions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts secrets.KeyVaultOptions
		want error
	}{
		{"two overrides, one name", secrets.KeyVaultOptions{Names: map[string]string{"A": "shared", "B": "SHARED"}}, secrets.ErrNameCollision},
		{"override onto a default name", secrets.KeyVaultOptions{Names: map[string]string{"API_KEY": "DB-PASSWORD"}}, secrets.ErrNameCollision},
		{"override onto a default name with prefix", secrets.KeyVaultOptions{Prefix: "app-", Names: map[string]string{"API_KEY": "app-db-password"}}, secrets.ErrNameCollision},
		{"invalid override name", secrets.KeyVaultOptions{Names: map[string]string{"A": "has_underscore"}}, secrets.ErrInvalidKey},
		{"invalid override key", secrets.KeyVaultOptions{Names: map[string]string{"lower": "ok"}}, secrets.ErrInvalidKey},
		{"invalid prefix", secrets.KeyVaultOptions{Prefix: "app_"}, secrets.ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fv := newFakeVault()
			_, err := secrets.NewLoader(dev, secrets.FromKeyVault(fv.client(t), &tc.opts))
			require.ErrorIs(t, err, tc.want)
		})
	}
	// Swapping two names is no collision.
	fv := newFakeVault()
	_, err := secrets.NewLoader(dev, secrets.FromKeyVault(fv.client(t), &secrets.KeyVaultOptions{
		Names: map[string]string{"A": "B", "B": "A"},
	}))
	require.NoError(t, err)
}

func TestKeyVaultExpiresDuringRefresh(t *testing.T) {
	t.Parallel()
	vals := synthetic(10, 2)
	fv := newFakeVault()
	fv.set("DB-PASSWORD", vals[0])
	dir, _ := dirWith(t, map[string]string{"DB_PASSWORD": vals[1]})
	l := newVaultLoader(t, fv, dev, nil, dir)
	_, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	var got []secrets.Change
	l.OnChange(func(c secrets.Change) { got = append(got, c) })
	fv.update("DB-PASSWORD", func(s *fakeSecret) { s.expires = to.Ptr(time.Now().Add(-time.Second)) })
	require.NoError(t, l.Refresh(context.Background()))
	require.Len(t, got, 1)
	assert.Contains(t, got[0].Source, "dir:", "the expired secret gives way to the next source")
	assert.True(t, got[0].Value.Equal(secrets.NewValue(vals[1])))
}

func TestKeyVaultNilClient(t *testing.T) {
	t.Parallel()
	_, err := secrets.NewLoader(dev, secrets.FromKeyVault(nil, nil))
	require.Error(t, err)
	assert.False(t, errors.Is(err, secrets.ErrNotFound))
}

func TestKeyVaultLogs(t *testing.T) {
	t.Parallel()
	vals := synthetic(11, 3)
	fv := newFakeVault()
	fv.set("DB-PASSWORD", vals[0])
	fv.set("OLD-KEY", vals[1])
	fv.update("OLD-KEY", func(s *fakeSecret) { s.enabled = false })
	var logs bytes.Buffer
	l := newVaultLoader(t, fv, &secrets.Options{
		Mode:   secrets.ModeDevelopment,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, nil)
	_, err := l.Get(context.Background(), "DB_PASSWORD")
	require.NoError(t, err)
	_, err = l.Get(context.Background(), "OLD_KEY")
	require.ErrorIs(t, err, secrets.ErrNotFound)
	fv.set("DB-PASSWORD", vals[2])
	require.NoError(t, l.Refresh(context.Background()))
	fv.setDown(true)
	require.Error(t, l.Refresh(context.Background()))

	out := logs.String()
	assert.Contains(t, out, `"reason":"disabled"`)
	assert.Contains(t, out, `"key":"OLD_KEY"`)
	assert.Contains(t, out, "value changed")
	assert.Contains(t, out, "refresh failed")
	requireNoLeak(t, "loader logs", out, vals...)
}
