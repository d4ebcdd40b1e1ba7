package auditlog

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// WriterSink writes each event as one JSON line to an io.Writer, typically
// os.Stdout for container log collection. It gives no integrity and no
// durability beyond the writer's own: pair it with a FileSink. Safe for
// concurrent use; lines are never interleaved.
type WriterSink struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewWriterSink returns a sink writing to w. Close does not close w.
func NewWriterSink(w io.Writer) *WriterSink { return &WriterSink{w: w} }

// Write writes line and a newline in one call to the writer.
func (s *WriterSink) Write(_ context.Context, line []byte) error {
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(buf); err != nil {
		s.err = err
		return fmt.Errorf("auditlog: writer sink: %w", err)
	}
	s.err = nil
	return nil
}

// Check returns the error of the last write, if it failed.
func (s *WriterSink) Check(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return fmt.Errorf("auditlog: writer sink: %w", s.err)
	}
	return nil
}

// Close does nothing: the caller owns the writer.
func (s *WriterSink) Close() error { return nil }
