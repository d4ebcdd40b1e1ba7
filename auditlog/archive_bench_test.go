package auditlog

import (
	"testing"

	"github.com/phiguard/phiguard/internal/testenv"
)

// Benchmarks of the archive sink: remote-durable Record (Sync: returns once
// the event is in the append blob, concurrent callers sharing one Append
// Block) with 64 concurrent writers against Azurite on loopback, beside the
// baseline the issue names, the local Sync file sink (fsync group commit),
// so one run gives the ratio. Each reports events/s, p99 latency, and
// appends/s (Append Block calls, or fsyncs for the file sink).
//
//	go test -run '^$' -bench 'Archive' -benchtime 2s ./auditlog/

func BenchmarkArchiveRecordRemoteDurable64(b *testing.B) {
	c := testenv.NewContainer(b)
	s, err := NewArchiveSink(c, &ArchiveOptions{
		SigningKey: testSigningKey("a"), Service: "bench", Instance: "pod-1", SpoolDir: b.TempDir(),
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := New(&Options{PseudonymKey: testPseudonymKey()}, s)
	if err != nil {
		b.Fatal(err)
	}
	start := s.Appends()
	runWriters(b, l.Record)
	b.ReportMetric(float64(s.Appends()-start)/b.Elapsed().Seconds(), "appends/s")
	if st := s.Stats(); st.Spooled > 0 {
		b.Errorf("%d appends were spooled: the benchmark measured an outage", st.Spooled)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkArchiveBaselineFileSync64 is the local Sync file sink with the
// same writers (its appends/s are fsyncs/s).
func BenchmarkArchiveBaselineFileSync64(b *testing.B) { benchFileSink(b, Sync, "appends/s") }
