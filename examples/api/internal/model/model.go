// Package model loads the readmission risk model that ships with the
// reference service and scores requests with it.
//
// The model is part of the service's inventory: its file is copied into the
// image beside the binary, and the binary refuses to start when the file's
// SHA-256 differs from the digest compiled into it, so a model cannot be
// swapped without a new, reviewed build.
package model

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// MaxFileSize bounds the model file read at start.
const MaxFileSize = 1 << 20

// ErrChecksum means the model file is not the one the binary was built for.
var ErrChecksum = errors.New("model: checksum mismatch")

// Feature is one input of the logistic regression, with the range a request
// value must fall in.
type Feature struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Model is a logistic regression: risk = sigmoid(intercept + Σ weight·x).
// It is immutable after Load and safe for concurrent use.
type Model struct {
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Type        string    `json:"type"`
	Description string    `json:"description"`
	Intercept   float64   `json:"intercept"`
	Features    []Feature `json:"features"`
	// SHA256 is the hex digest of the file the model was loaded from.
	SHA256 string `json:"-"`
}

// Load reads the model at path and checks its SHA-256 against wantHex.
func Load(path, wantHex string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: open: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("model: read: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("model: file larger than %d bytes", MaxFileSize)
	}
	return Parse(data, wantHex)
}

// Parse checks data's SHA-256 against wantHex and decodes the model.
func Parse(data []byte, wantHex string) (*Model, error) {
	want, err := hex.DecodeString(strings.TrimSpace(wantHex))
	if err != nil || len(want) != sha256.Size {
		return nil, errors.New("model: expected digest is not a hex SHA-256")
	}
	got := sha256.Sum256(data)
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return nil, fmt.Errorf("%w: file has %x", ErrChecksum, got)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Model
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("model: decode: %w", err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return nil, errors.New("model: decode: data after the model object")
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.SHA256 = hex.EncodeToString(got[:])
	return &m, nil
}

func (m *Model) validate() error {
	if m.Type != "logistic_regression" {
		return fmt.Errorf("model: unsupported type %q", m.Type)
	}
	if len(m.Features) == 0 {
		return errors.New("model: no features")
	}
	seen := map[string]bool{}
	for _, f := range m.Features {
		switch {
		case f.Name == "":
			return errors.New("model: feature without a name")
		case seen[f.Name]:
			return fmt.Errorf("model: feature %q listed twice", f.Name)
		case !finite(f.Weight) || !finite(f.Min) || !finite(f.Max) || f.Min > f.Max:
			return fmt.Errorf("model: feature %q has invalid numbers", f.Name)
		}
		seen[f.Name] = true
	}
	if !finite(m.Intercept) {
		return errors.New("model: invalid intercept")
	}
	return nil
}

// Reasons of an InputError.
const (
	ReasonUnknown    = "unknown feature"
	ReasonMissing    = "missing"
	ReasonOutOfRange = "out of range"
)

// InputError reports a request value the model cannot score. It names the
// feature, never the value.
type InputError struct {
	Feature  string
	Reason   string
	Min, Max float64 // the allowed range, for ReasonOutOfRange
}

func (e *InputError) Error() string {
	if e.Reason == ReasonOutOfRange {
		return fmt.Sprintf("model: feature %s: out of range [%g, %g]", e.Feature, e.Min, e.Max)
	}
	return "model: feature " + e.Feature + ": " + e.Reason
}

// Score returns the risk in [0, 1] for the given feature values. Every
// feature must be present and within its range; unknown names are errors.
func (m *Model) Score(x map[string]float64) (float64, error) {
	for name := range x {
		if !m.has(name) {
			return 0, &InputError{Feature: name, Reason: ReasonUnknown}
		}
	}
	z := m.Intercept
	for _, f := range m.Features {
		v, ok := x[f.Name]
		if !ok {
			return 0, &InputError{Feature: f.Name, Reason: ReasonMissing}
		}
		if !finite(v) || v < f.Min || v > f.Max {
			return 0, &InputError{Feature: f.Name, Reason: ReasonOutOfRange, Min: f.Min, Max: f.Max}
		}
		z += f.Weight * v
	}
	return 1 / (1 + math.Exp(-z)), nil
}

func (m *Model) has(name string) bool {
	for _, f := range m.Features {
		if f.Name == name {
			return true
		}
	}
	return false
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
