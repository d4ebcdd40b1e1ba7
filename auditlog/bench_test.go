package auditlog

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brianvoe/gofakeit/v7"
)

// Benchmarks: Record to the file sink (sync with group commit, and async)
// with 64 concurrent writers, against two baselines writing the same
// events: slog's JSON handler to a file (no integrity, no fsync), and plain
// JSON lines with the same group-commit fsync (durability, no integrity).
// Each reports events/s, p99 latency and fsyncs/s.
//
//	go test -run '^$' -bench . -benchtime 2s ./auditlog/

const benchWriters = 64

func benchEvents() []Event {
	f := gofakeit.New(99)
	evs := make([]Event, 1024)
	for i := range evs {
		evs[i] = fakeEvent(f, newSynthetic(f))
	}
	return evs
}

// runWriters runs record from 64 goroutines and reports throughput and p99.
func runWriters(b *testing.B, record func(ctx context.Context, e Event) error) {
	b.Helper()
	evs := benchEvents()
	b.ReportAllocs()
	b.SetParallelism((benchWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var (
		mu  sync.Mutex
		lat []time.Duration
		idx atomic.Uint64
	)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 4096)
		for pb.Next() {
			e := evs[idx.Add(1)%uint64(len(evs))]
			t0 := time.Now()
			if err := record(ctx, e); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// benchFileSink measures Record to a file sink with 64 writers and reports
// its fsyncs per second under the metric name unit.
func benchFileSink(b *testing.B, mode Mode, unit string) {
	fs, err := NewFileSink(b.TempDir(), &FileOptions{SigningKey: testSigningKey("a"), Mode: mode})
	if err != nil {
		b.Fatal(err)
	}
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, fs)
	if err != nil {
		b.Fatal(err)
	}
	start := fs.Fsyncs()
	runWriters(b, l.Record)
	b.ReportMetric(float64(fs.Fsyncs()-start)/b.Elapsed().Seconds(), unit)
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkRecordFileSync64(b *testing.B)  { benchFileSink(b, Sync, "fsyncs/s") }
func BenchmarkRecordFileAsync64(b *testing.B) { benchFileSink(b, Async, "fsyncs/s") }

// BenchmarkBaselineSlogJSON64 writes the same events with slog's JSON
// handler to a file: no integrity, no pseudonymization, no fsync.
func BenchmarkBaselineSlogJSON64(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "slog.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	lg := slog.New(slog.NewJSONHandler(f, nil))
	runWriters(b, func(ctx context.Context, e Event) error {
		lg.LogAttrs(ctx, slog.LevelInfo, "audit", slog.Any("event", e))
		return nil
	})
	b.ReportMetric(0, "fsyncs/s")
}

// BenchmarkBaselineJSONLinesGroupCommit64 writes the same events as plain
// JSON lines with the file sink's group commit (one writer goroutine,
// callers share an fsync), without hashing, signing or pseudonymization.
func BenchmarkBaselineJSONLinesGroupCommit64(b *testing.B) {
	w, err := newGroupCommitWriter(filepath.Join(b.TempDir(), "plain.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	runWriters(b, func(ctx context.Context, e Event) error {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return w.write(ctx, line)
	})
	b.ReportMetric(float64(w.fsyncs.Load())/b.Elapsed().Seconds(), "fsyncs/s")
	w.close()
}

type groupCommitWriter struct {
	f       *os.File
	buf     []byte
	mu      sync.Mutex
	pending *batch
	wake    chan struct{}
	quit    chan struct{}
	done    chan struct{}
	fsyncs  atomic.Uint64
}

func newGroupCommitWriter(path string) (*groupCommitWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	w := &groupCommitWriter{f: f, pending: newBatch(), wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *groupCommitWriter) write(ctx context.Context, line []byte) error {
	w.mu.Lock()
	b := w.pending
	b.lines = append(b.lines, line)
	b.count++
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *groupCommitWriter) run() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
		case <-w.quit:
			return
		}
		w.mu.Lock()
		b := w.pending
		if b.count > 0 {
			w.pending = nextBatch(b)
		}
		w.mu.Unlock()
		if b.count == 0 {
			continue
		}
		w.buf = w.buf[:0]
		for _, l := range b.lines {
			w.buf = append(append(w.buf, l...), '\n')
		}
		if _, err := w.f.Write(w.buf); err != nil {
			b.err = err
		} else if err := w.f.Sync(); err != nil {
			b.err = err
		}
		w.fsyncs.Add(1)
		close(b.done)
	}
}

func (w *groupCommitWriter) close() {
	close(w.quit)
	<-w.done
	_ = w.f.Close()
}
