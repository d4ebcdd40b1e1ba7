package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/examples/api/internal/auth"
	"github.com/phiguard/phiguard/examples/api/internal/model"
	"github.com/phiguard/phiguard/phimask"
	"github.com/phiguard/phiguard/storage"
)

func benchKey(b *testing.B, n int) []byte {
	k := make([]byte, n)
	_, err := rand.Read(k)
	require.NoError(b, err)
	return k
}

// newBenchServer is the full stack on real components: folder store,
// synchronous audit trail with group commit, phimask JSON logs.
func newBenchServer(b *testing.B, mode auditlog.Mode) (*Server, string, string, *auditlog.FileSink) {
	dir := b.TempDir()
	kek, err := storage.NewLocalKey("bench", benchKey(b, 32))
	require.NoError(b, err)
	store, err := storage.NewDirStore(filepath.Join(dir, "objects"), kek, nil)
	require.NoError(b, err)
	tokenKey := benchKey(b, 32)
	file, err := auditlog.NewFileSink(filepath.Join(dir, "audit"), &auditlog.FileOptions{
		SigningKey: ed25519.NewKeyFromSeed(benchKey(b, 32)),
		Mode:       mode,
	})
	require.NoError(b, err)
	audit, err := auditlog.New(&auditlog.Options{PseudonymKey: tokenKey}, file)
	require.NoError(b, err)
	b.Cleanup(func() { _ = audit.Close() })
	dev, err := auth.OpenDev(dir)
	require.NoError(b, err)
	m, err := model.Load(filepath.Join("..", "..", "model", "readmission.json"), modelDigest(b))
	require.NoError(b, err)
	logger := slog.New(phimask.NewHandler(slog.NewJSONHandler(io.Discard, nil), &phimask.Options{Key: tokenKey}))
	s, err := New(Config{Logger: logger, Store: store, Audit: audit, Verifier: auth.NewCache(dev, nil), Model: m, TokenKey: tokenKey})
	require.NoError(b, err)

	tok, err := dev.Token("bench-user", auth.RoleClinician, time.Hour)
	require.NoError(b, err)
	body, _ := json.Marshal(Patient{Name: "Bench Person", BirthDate: "1970-01-02", MRN: "MRN0000001"})
	id := newID()
	_, err = store.Put(context.Background(), patientObject(id), bytes.NewReader(body), nil)
	require.NoError(b, err)
	return s, id, tok, file
}

func modelDigest(b *testing.B) string {
	data, err := os.ReadFile(filepath.Join("..", "..", "model", "readmission.json.sha256"))
	require.NoError(b, err)
	return string(data)
}

// BenchmarkGetPatientLoad drives GET /v1/patients/{id} over loopback with
// 16 and 64 concurrent clients: the full stack (auth, a synchronous audit
// event per request, access log) against the same handler with no
// middleware. It reports requests/s and p99. The full stack waits for the
// audit trail's fsync before it answers (fail closed); concurrent requests
// share one fsync (group commit), so more clients amortize it better.
func BenchmarkGetPatientLoad(b *testing.B) {
	s, id, tok, file := newBenchServer(b, auditlog.Sync)
	// The same stack with the trail acknowledging from memory: what the
	// middleware costs without the fsync that durability needs.
	sAsync, idAsync, tokAsync, fileAsync := newBenchServer(b, auditlog.Async)
	bare := http.NewServeMux()
	bare.HandleFunc("GET /v1/patients/{id}", func(w http.ResponseWriter, r *http.Request) {
		status, body, err := s.getPatient(w, r, &reqCtx{r: r})
		if err != nil {
			http.Error(w, "error", http.StatusInternalServerError)
			return
		}
		writeJSON(w, status, body)
	})
	for _, bc := range []struct {
		name    string
		h       http.Handler
		trail   *auditlog.FileSink // nil for the bare handler
		workers int
		id, tok string
	}{
		{"bare/clients=16", bare, nil, 16, id, tok}, {"full/clients=16", s, file, 16, id, tok},
		{"full-async-audit/clients=16", sAsync, fileAsync, 16, idAsync, tokAsync},
		{"bare/clients=64", bare, nil, 64, id, tok}, {"full/clients=64", s, file, 64, id, tok},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := httptest.NewServer(bc.h)
			defer srv.Close()
			client := srv.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = bc.workers
			url := srv.URL + "/v1/patients/" + bc.id
			workers := bc.workers
			var next atomic.Int64
			lat := make([][]time.Duration, workers)
			var wg sync.WaitGroup
			var fsyncs0 uint64
			if bc.trail != nil {
				fsyncs0 = bc.trail.Fsyncs()
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
						req.Header.Set("Authorization", "Bearer "+bc.tok)
						t0 := time.Now()
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			all := slices.Concat(lat...)
			slices.Sort(all)
			if len(all) > 0 {
				b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
			}
			if bc.trail != nil {
				// How well group commit shares an fsync between requests.
				b.ReportMetric(float64(b.N)/float64(max(bc.trail.Fsyncs()-fsyncs0, 1)), "events/fsync")
			}
		})
	}
}
