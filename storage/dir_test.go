package storage_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/storage"
)

func TestDirStorePermissionsAndAtomicity(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	e := dirEnv(dir)
	s := e.newStore(t, newKey(t, "k"), nil)
	putBytes(t, s, "a/b/doc", []byte("content"))
	putBytes(t, s, "top", []byte("content"))

	// A failed and a cancelled Put leave nothing behind.
	_, err := s.Put(ctxT(t), "a/failed", &cancelReader{limit: 5 * mib, err: os.ErrClosed}, nil)
	require.Error(t, err)
	ctx, cancel := context.WithCancel(ctxT(t))
	_, err = s.Put(ctx, "a/cancelled", &cancelReader{limit: 5 * mib, cancel: cancel}, nil)
	require.ErrorIs(t, err, context.Canceled)
	cancel()

	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		fi, err := d.Info()
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			assert.Equal(t, fs.FileMode(0o700), fi.Mode().Perm(), "folder %s", rel)
		} else {
			assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm(), "file %s", rel)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	}))
	assert.ElementsMatch(t, []string{"a/b/doc", "top"}, files, "temporary or partial files left")
}

func TestDirStoreTightensFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	_, err := storage.NewDirStore(dir, newKey(t, "k"), &storage.DirStoreOptions{Getenv: devEnv})
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), fi.Mode().Perm())

	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = storage.NewDirStore(file, newKey(t, "k"), &storage.DirStoreOptions{Getenv: devEnv})
	require.Error(t, err)
	_, err = storage.NewDirStore("", newKey(t, "k"), &storage.DirStoreOptions{Getenv: devEnv})
	require.Error(t, err)
	_, err = storage.NewDirStore(dir, nil, &storage.DirStoreOptions{Getenv: devEnv})
	require.Error(t, err)
}

func TestDirStoreProductionGuard(t *testing.T) {
	t.Parallel()
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	cases := []struct {
		name    string
		opts    storage.DirStoreOptions
		refused bool
	}{
		{"development", storage.DirStoreOptions{Getenv: env(map[string]string{"APP_ENV": "development"})}, false},
		{"unset", storage.DirStoreOptions{Getenv: env(nil)}, false},
		{"production", storage.DirStoreOptions{Getenv: env(map[string]string{"APP_ENV": "production"})}, true},
		{"production any case and spaces", storage.DirStoreOptions{Getenv: env(map[string]string{"APP_ENV": " Production "})}, true},
		{"production on an encrypted volume", storage.DirStoreOptions{EncryptedVolume: true, Getenv: env(map[string]string{"APP_ENV": "production"})}, false},
		{"custom variable", storage.DirStoreOptions{ProductionEnv: "DEPLOY_STAGE", Getenv: env(map[string]string{"DEPLOY_STAGE": "production", "APP_ENV": "dev"})}, true},
		{"custom variable ignores APP_ENV", storage.DirStoreOptions{ProductionEnv: "DEPLOY_STAGE", Getenv: env(map[string]string{"APP_ENV": "production"})}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "s")
			s, err := storage.NewDirStore(dir, newKey(t, "k"), &tc.opts)
			if tc.refused {
				require.ErrorIs(t, err, storage.ErrProductionDir)
				assert.Nil(t, s)
				_, statErr := os.Stat(dir)
				assert.ErrorIs(t, statErr, fs.ErrNotExist, "refused store created its folder")
				return
			}
			require.NoError(t, err)
			require.NoError(t, s.Check(ctxT(t)))
		})
	}
}

func TestDirStoreDefaultReadsAPPENV(t *testing.T) {
	// Not parallel: it sets the process environment.
	t.Setenv("APP_ENV", "production")
	_, err := storage.NewDirStore(t.TempDir(), newKey(t, "k"), nil)
	require.ErrorIs(t, err, storage.ErrProductionDir)
}

func TestDirStoreCheckFailsWhenFolderGoes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "s")
	s, err := storage.NewDirStore(dir, newKey(t, "k"), &storage.DirStoreOptions{Getenv: devEnv})
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(dir))
	err = s.Check(ctxT(t))
	require.Error(t, err)
	assert.False(t, strings.Contains(err.Error(), dir), "error contains the path")
}

func TestDirStoreRejectsForeignFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "s")
	s, err := storage.NewDirStore(dir, newKey(t, "k"), &storage.DirStoreOptions{Getenv: devEnv})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plain"), []byte("not encrypted"), 0o600))
	_, _, err = getAll(t, s, "plain")
	require.ErrorIs(t, err, storage.ErrFormat)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	_, _, err = getAll(t, s, "sub")
	require.ErrorIs(t, err, storage.ErrNotFound)
}
