package phimask

import (
	"sync"
	"sync/atomic"
)

// Stats is a snapshot of what a Handler replaced, for compliance reporting.
// It never holds a PHI value: keys are attribute, group member and struct
// field names as they were written out (a key that itself held PHI is
// counted under its redacted form). Map keys are data, not names: the
// entries of a map are counted under the key that holds the map.
type Stats struct {
	// Records is the number of records handled.
	Records uint64
	// RecordsRedacted is the number of records in which something was replaced.
	RecordsRedacted uint64
	// ByKind counts replaced values by kind of PHI.
	ByKind map[Kind]uint64
	// ByKey counts replaced values by attribute or struct field name (map
	// entries under the key that holds the map). At most 1024 distinct
	// keys are tracked; the rest are counted under "(other)".
	ByKey map[string]uint64
	// Denied counts values replaced because their key was not on the
	// allow-list.
	Denied uint64
	// Failures counts values (or whole records) replaced because they could
	// not be processed: a panicking String, Error or LogValue method, a
	// nesting deeper than the limit.
	Failures uint64
}

const statsMaxKeys = 1024

// stats is shared by a Handler and the handlers derived from it.
type stats struct {
	records, redacted, denied, failures atomic.Uint64
	byKind                              [numKinds]atomic.Uint64

	mu    sync.Mutex
	byKey map[string]uint64
}

func newStats() *stats { return &stats{byKey: map[string]uint64{}} }

func (s *stats) count(k kid) { s.byKind[k].Add(1) }

func (s *stats) key(key string) {
	s.mu.Lock()
	if _, ok := s.byKey[key]; !ok && len(s.byKey) >= statsMaxKeys {
		key = "(other)"
	}
	s.byKey[key]++
	s.mu.Unlock()
}

func (s *stats) snapshot() Stats {
	out := Stats{
		Records:         s.records.Load(),
		RecordsRedacted: s.redacted.Load(),
		Denied:          s.denied.Load(),
		Failures:        s.failures.Load(),
		ByKind:          map[Kind]uint64{},
		ByKey:           map[string]uint64{},
	}
	for k := range s.byKind {
		if n := s.byKind[k].Load(); n > 0 {
			out.ByKind[kindNames[k]] = n
		}
	}
	s.mu.Lock()
	for k, n := range s.byKey {
		out.ByKey[k] = n
	}
	s.mu.Unlock()
	return out
}
