package storage_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/storage"
)

const encRegion = region + 28

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	sizes := []struct {
		name string
		n    int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"region minus one", region - 1},
		{"one region", region},
		{"region plus one", region + 1},
		{"50 MiB", 50 * mib},
	}
	forEachBackend(t, func(t *testing.T, e *env) {
		kek := newKey(t, "local-kek-1")
		stores := map[string]*storage.Store{
			"defaults":          e.newStore(t, kek, nil),
			"8MiB blocks x2":    e.newStore(t, kek, &storage.Options{BlockSize: 8 * mib, Concurrency: 2}),
			"odd block size x1": e.newStore(t, kek, &storage.Options{BlockSize: 5 * mib, Concurrency: 1}),
		}
		for _, sz := range sizes {
			data := randomBytes(sz.n)
			for sname, s := range stores {
				if sz.n == 50*mib && sname != "defaults" && sname != "8MiB blocks x2" {
					continue // keep the race-enabled run short
				}
				name := fmt.Sprintf("rt/%s/%d", strings.ReplaceAll(sname, " ", "_"), sz.n)
				t.Run(sz.name+"/"+sname, func(t *testing.T) {
					// Through a reader without Len: the streaming path.
					obj, err := s.Put(ctxT(t), name, onlyReader{bytes.NewReader(data)}, nil)
					require.NoError(t, err)
					assert.Equal(t, name, obj.Name)
					assert.Equal(t, int64(sz.n), obj.Size)
					assert.Equal(t, "local-kek-1", obj.KeyID)

					got, gobj, err := getAll(t, s, name)
					require.NoError(t, err)
					assert.Equal(t, int64(sz.n), gobj.Size)
					assert.Equal(t, name, gobj.Name)
					assert.True(t, bytes.Equal(data, got), "plaintext differs after round trip (len %d vs %d)", len(got), len(data))

					raw, md := e.readRaw(t, name)
					wantLen := sz.n + (sz.n+region-1)/region*28
					assert.Len(t, raw, wantLen, "stored size")
					assertNoPlaintext(t, raw, data)
					var ed map[string]any
					require.NoError(t, json.Unmarshal([]byte(md["encryptiondata"]), &ed))
					assert.Equal(t, "2.0", ed["EncryptionAgent"].(map[string]any)["Protocol"])
					assert.Equal(t, "AES_GCM_256", ed["EncryptionAgent"].(map[string]any)["EncryptionAlgorithm"])
					assert.Equal(t, "FullBlob", ed["EncryptionMode"])
					assert.InDelta(t, float64(region), ed["EncryptedRegionInfo"].(map[string]any)["DataLength"], 0)
					assert.InDelta(t, 12.0, ed["EncryptedRegionInfo"].(map[string]any)["NonceLength"], 0)
					assert.Equal(t, "A256KW", ed["WrappedContentKey"].(map[string]any)["Algorithm"])
					assert.NotEmpty(t, md["phiguardlengthmac"])
				})
			}
		}
	})
}

// tamperCase edits the raw content and metadata of a stored object.
type tamperCase struct {
	name  string
	edit  func(t *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string)
	store func(t *testing.T, e *env) *storage.Store // nil: the writer's store
	want  []error                                   // any of these
}

func editED(t *testing.T, md map[string]string, f func(ed map[string]any)) map[string]string {
	var ed map[string]any
	require.NoError(t, json.Unmarshal([]byte(md["encryptiondata"]), &ed))
	f(ed)
	b, err := json.Marshal(ed)
	require.NoError(t, err)
	md["encryptiondata"] = string(b)
	return md
}

func TestTamper(t *testing.T) {
	t.Parallel()
	// Three regions: 4 MiB, 4 MiB, 100 bytes.
	data := randomBytes(2*region + 100)
	auth := []error{storage.ErrAuthentication}
	format := []error{storage.ErrFormat}
	authOrFormat := []error{storage.ErrAuthentication, storage.ErrFormat}
	otherKey := func(kid string) func(t *testing.T, e *env) *storage.Store {
		return func(t *testing.T, e *env) *storage.Store { return e.newStore(t, newKey(t, kid), nil) }
	}
	cases := []tamperCase{
		{name: "flip a byte in region 1", want: auth, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			raw[encRegion+5000] ^= 1
			return raw, md
		}},
		{name: "flip a byte in the last tag", want: auth, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			raw[len(raw)-1] ^= 0x80
			return raw, md
		}},
		{name: "flip a nonce byte", want: auth, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			raw[encRegion+11] ^= 1
			return raw, md
		}},
		{name: "swap regions 0 and 1", want: auth, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			out := append(append(append([]byte{}, raw[encRegion:2*encRegion]...), raw[:encRegion]...), raw[2*encRegion:]...)
			return out, md
		}},
		{name: "cut at a region boundary", want: auth, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw[:encRegion], md
		}},
		{name: "drop the last region", want: auth, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw[:2*encRegion], md
		}},
		{name: "cut inside a region", want: authOrFormat, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw[:len(raw)-50], md
		}},
		{name: "cut to a stub shorter than a tag", want: format, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw[:2*encRegion+10], md
		}},
		{name: "duplicate the last region", want: authOrFormat, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return append(raw, raw[2*encRegion:]...), md
		}},
		{name: "empty the content", want: auth, edit: func(_ *testing.T, _ []byte, md map[string]string) ([]byte, map[string]string) {
			return nil, md
		}},
		{name: "alter the wrapped key", want: auth, edit: func(t *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw, editED(t, md, func(ed map[string]any) {
				w := ed["WrappedContentKey"].(map[string]any)
				k, _ := base64.StdEncoding.DecodeString(w["EncryptedKey"].(string))
				k[3] ^= 1
				w["EncryptedKey"] = base64.StdEncoding.EncodeToString(k)
			})
		}},
		{name: "alter the key ID", want: []error{storage.ErrKeyMismatch}, edit: func(t *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw, editED(t, md, func(ed map[string]any) { ed["WrappedContentKey"].(map[string]any)["KeyId"] = "someone-else" })
		}},
		{name: "alter the region length", want: format, edit: func(t *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw, editED(t, md, func(ed map[string]any) { ed["EncryptedRegionInfo"].(map[string]any)["DataLength"] = 1 << 16 })
		}},
		{name: "encryptiondata not JSON", want: format, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			md["encryptiondata"] = md["encryptiondata"][:40]
			return raw, md
		}},
		{name: "drop encryptiondata", want: format, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			delete(md, "encryptiondata")
			return raw, md
		}},
		{name: "drop the length MAC", want: auth, edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			delete(md, "phiguardlengthmac")
			return raw, md
		}},
		{name: "length MAC of a shorter object", want: auth, edit: func(t *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			m, _ := base64.StdEncoding.DecodeString(md["phiguardlengthmac"])
			m[0] ^= 1
			md["phiguardlengthmac"] = base64.StdEncoding.EncodeToString(m)
			return raw, md
		}},
		{name: "protocol 1.0", want: []error{storage.ErrUnsupported}, edit: func(t *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw, editED(t, md, func(ed map[string]any) { ed["EncryptionAgent"].(map[string]any)["Protocol"] = "1.0" })
		}},
		{name: "protocol 2.1", want: []error{storage.ErrUnsupported}, edit: func(t *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw, editED(t, md, func(ed map[string]any) { ed["EncryptionAgent"].(map[string]any)["Protocol"] = "2.1" })
		}},
		{name: "algorithm AES_CBC_256", want: []error{storage.ErrUnsupported}, edit: func(t *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) {
			return raw, editED(t, md, func(ed map[string]any) { ed["EncryptionAgent"].(map[string]any)["EncryptionAlgorithm"] = "AES_CBC_256" })
		}},
		{name: "wrong key under the same key ID", want: auth, store: otherKey("local-kek-1"),
			edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) { return raw, md }},
		{name: "wrong key under another key ID", want: []error{storage.ErrKeyMismatch}, store: otherKey("local-kek-2"),
			edit: func(_ *testing.T, raw []byte, md map[string]string) ([]byte, map[string]string) { return raw, md }},
	}
	forEachBackend(t, func(t *testing.T, e *env) {
		s := e.newStore(t, newKey(t, "local-kek-1"), nil)
		putBytes(t, s, "original", data)
		raw, md := e.readRaw(t, "original")
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				name := fmt.Sprintf("tampered-%d", i)
				r2, md2 := tc.edit(t, bytes.Clone(raw), maps.Clone(md))
				e.writeRaw(t, name, r2, md2)
				reader := s
				if tc.store != nil {
					reader = tc.store(t, e)
				}
				got, _, err := getAll(t, reader, name)
				require.Error(t, err, "tampering not detected")
				assert.True(t, anyIs(err, tc.want), "error %q is none of %v", err, tc.want)
				// Only whole, authenticated regions of the original may have
				// been released before the error.
				assert.Zero(t, len(got)%region, "released %d bytes: not whole regions", len(got))
				assert.True(t, bytes.Equal(got, data[:len(got)]), "released bytes are not the original's")
			})
		}
	})
}

func anyIs(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// A flipped byte in region 1 lets region 0, authenticated, through first.
func TestTamperReleasesOnlyAuthenticatedRegions(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		data := randomBytes(2*region + 100)
		s := e.newStore(t, newKey(t, "k"), nil)
		putBytes(t, s, "o", data)
		raw, md := e.readRaw(t, "o")
		raw[encRegion+100] ^= 1
		e.writeRaw(t, "o2", raw, md)
		rc, _, err := s.Get(ctxT(t), "o2")
		require.NoError(t, err)
		defer rc.Close()
		got, err := io.ReadAll(rc)
		require.ErrorIs(t, err, storage.ErrAuthentication)
		assert.Len(t, got, region)
		assert.True(t, bytes.Equal(got, data[:region]))
		assert.Contains(t, err.Error(), "region 1")
	})
}

func TestRewrap(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		oldKey, newK := newKey(t, "kek-2025"), newKey(t, "kek-2026")
		data := randomBytes(region + 7)
		sOld := e.newStore(t, oldKey, nil)
		putBytes(t, sOld, "doc", data)
		rawBefore, mdBefore := e.readRaw(t, "doc")

		// During rotation: the new key writes, the old one still reads.
		sRot := e.newStore(t, newK, &storage.Options{DecryptionKeys: []storage.KeyWrapper{oldKey}})
		got, obj, err := getAll(t, sRot, "doc")
		require.NoError(t, err)
		assert.Equal(t, "kek-2025", obj.KeyID)
		assert.True(t, bytes.Equal(data, got))

		require.NoError(t, sRot.Rewrap(ctxT(t), "doc", newK))
		rawAfter, mdAfter := e.readRaw(t, "doc")
		assert.True(t, bytes.Equal(rawBefore, rawAfter), "content changed by Rewrap")
		assert.Equal(t, mdBefore["phiguardlengthmac"], mdAfter["phiguardlengthmac"])
		assert.NotEqual(t, mdBefore["encryptiondata"], mdAfter["encryptiondata"])

		sNew := e.newStore(t, newK, nil)
		got, obj, err = getAll(t, sNew, "doc")
		require.NoError(t, err)
		assert.Equal(t, "kek-2026", obj.KeyID)
		assert.True(t, bytes.Equal(data, got))

		_, _, err = getAll(t, sOld, "doc")
		require.ErrorIs(t, err, storage.ErrKeyMismatch)
		require.ErrorIs(t, sOld.Rewrap(ctxT(t), "doc", oldKey), storage.ErrKeyMismatch)
		require.ErrorIs(t, sNew.Rewrap(ctxT(t), "missing", oldKey), storage.ErrNotFound)
	})
}

func TestNames(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		s := e.newStore(t, newKey(t, "k"), nil)
		t.Run("empty name gets a random opaque one", func(t *testing.T) {
			a := putBytes(t, s, "", []byte("x"))
			b := putBytes(t, s, "", []byte("y"))
			assert.Regexp(t, "^[0-9a-f]{32}$", a.Name)
			assert.NotEqual(t, a.Name, b.Name)
			got, _, err := getAll(t, s, a.Name)
			require.NoError(t, err)
			assert.Equal(t, "x", string(got))
		})
		t.Run("nested names", func(t *testing.T) {
			putBytes(t, s, "a/b/c.bin", []byte("nested"))
			got, _, err := getAll(t, s, "a/b/c.bin")
			require.NoError(t, err)
			assert.Equal(t, "nested", string(got))
		})
		bad := []struct{ name, value string }{
			{"parent segment", "../escape"},
			{"dot segment", "a/./b"},
			{"hidden", ".tmp-x"},
			{"leading slash", "/abs"},
			{"trailing slash", "dir/"},
			{"double slash", "a//b"},
			{"space", "a b"},
			{"backslash", `a\b`},
			{"non-ASCII", "caf\u00e9"},
			{"too long", strings.Repeat("a", 1025)},
		}
		for _, tc := range bad {
			t.Run("refused/"+tc.name, func(t *testing.T) {
				_, err := s.Put(ctxT(t), tc.value, strings.NewReader("x"), nil)
				require.ErrorIs(t, err, storage.ErrNameRefused)
				_, _, err = s.Get(ctxT(t), tc.value)
				require.ErrorIs(t, err, storage.ErrNameRefused)
			})
		}
	})
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		s := e.newStore(t, newKey(t, "k"), nil)
		_, _, err := s.Get(ctxT(t), "no-such-object-name")
		require.ErrorIs(t, err, storage.ErrNotFound)
		assert.NotContains(t, err.Error(), "no-such-object-name")
		require.ErrorIs(t, s.Delete(ctxT(t), "no-such-object-name"), storage.ErrNotFound)

		putBytes(t, s, "gone", []byte("bye"))
		require.NoError(t, s.Delete(ctxT(t), "gone"))
		assert.False(t, e.exists(t, "gone"))
		_, _, err = s.Get(ctxT(t), "gone")
		require.ErrorIs(t, err, storage.ErrNotFound)
	})
}

func TestOverwrite(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		s := e.newStore(t, newKey(t, "k"), nil)
		putBytes(t, s, "doc", []byte("v1"))
		putBytes(t, s, "doc", []byte("v2"))
		_, err := s.Put(ctxT(t), "doc", strings.NewReader("v3"), &storage.PutOptions{NoOverwrite: true})
		require.ErrorIs(t, err, storage.ErrExists)
		got, _, err := getAll(t, s, "doc")
		require.NoError(t, err)
		assert.Equal(t, "v2", string(got))
		_, err = s.Put(ctxT(t), "fresh", strings.NewReader("v1"), &storage.PutOptions{NoOverwrite: true})
		require.NoError(t, err)
	})
}

// cancelReader produces data and calls cancel after limit bytes.
type cancelReader struct {
	n, limit int
	cancel   func()
	err      error // returned instead of cancelling, if set
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		if c.err != nil {
			return 0, c.err
		}
		c.cancel()
	}
	for i := range p {
		p[i] = byte(c.n + i)
	}
	c.n += len(p)
	return len(p), nil
}

func TestCancelMidUpload(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		s := e.newStore(t, newKey(t, "k"), &storage.Options{Concurrency: 2})
		putBytes(t, s, "existing", []byte("old"))
		for _, name := range []string{"new-object", "existing"} {
			ctx, cancel := context.WithCancel(ctxT(t))
			_, err := s.Put(ctx, name, &cancelReader{limit: 20 * mib, cancel: cancel}, nil)
			cancel()
			require.ErrorIs(t, err, context.Canceled)
		}
		assert.False(t, e.exists(t, "new-object"), "a cancelled upload left an object")
		got, _, err := getAll(t, s, "existing")
		require.NoError(t, err)
		assert.Equal(t, "old", string(got), "a cancelled upload replaced an object")
	})
}

func TestReaderErrorLeavesNoObject(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		s := e.newStore(t, newKey(t, "k"), nil)
		boom := errors.New("source failed")
		_, err := s.Put(ctxT(t), "partial", &cancelReader{limit: 9 * mib, err: boom}, nil)
		require.ErrorIs(t, err, boom)
		assert.False(t, e.exists(t, "partial"))
	})
}

func TestCheck(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		s := e.newStore(t, newKey(t, "k"), nil)
		require.NoError(t, s.Check(ctxT(t)))
	})
}

func TestLengthMACOptional(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, e *env) {
		kek := newKey(t, "k")
		s := e.newStore(t, kek, nil)
		data := randomBytes(region + 1)
		putBytes(t, s, "o", data)
		raw, md := e.readRaw(t, "o")
		delete(md, "phiguardlengthmac")
		e.writeRaw(t, "foreign", raw, md)
		_, _, err := getAll(t, s, "foreign")
		require.ErrorIs(t, err, storage.ErrAuthentication)
		lenient := e.newStore(t, kek, &storage.Options{AcceptMissingLengthMAC: true})
		got, _, err := getAll(t, lenient, "foreign")
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, got))
		// A present MAC is still enforced.
		e.writeRaw(t, "cut", raw[:encRegion], map[string]string{"encryptiondata": md["encryptiondata"], "phiguardlengthmac": mustMD(t, e, "o")})
		_, _, err = getAll(t, lenient, "cut")
		require.ErrorIs(t, err, storage.ErrAuthentication)
	})
}

func mustMD(t *testing.T, e *env, name string) string {
	_, md := e.readRaw(t, name)
	return md["phiguardlengthmac"]
}
