package model_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/phiguard/phiguard/examples/api/internal/model"
)

func shippedDigest(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "model", "readmission.json.sha256"))
	require.NoError(t, err)
	return string(b)
}

func TestShippedModelLoads(t *testing.T) {
	m, err := model.Load(filepath.Join("..", "..", "model", "readmission.json"), shippedDigest(t))
	require.NoError(t, err)
	assert.Equal(t, "readmission-30d", m.Name)
	assert.Len(t, m.SHA256, 64)

	low := map[string]float64{"age": 30, "prior_admissions_12m": 0, "length_of_stay_days": 1,
		"medication_count": 1, "charlson_index": 0, "emergency_admission": 0, "discharged_home": 1}
	high := map[string]float64{"age": 88, "prior_admissions_12m": 6, "length_of_stay_days": 21,
		"medication_count": 18, "charlson_index": 7, "emergency_admission": 1, "discharged_home": 0}
	lo, err := m.Score(low)
	require.NoError(t, err)
	hi, err := m.Score(high)
	require.NoError(t, err)
	assert.Greater(t, lo, 0.0)
	assert.Less(t, hi, 1.0)
	assert.Less(t, lo, 0.1, "a young, short, home discharge is low risk")
	assert.Greater(t, hi, 0.5, "many risk factors give a high risk")
}

func TestTamperedModelRefused(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "model", "readmission.json"))
	require.NoError(t, err)
	data[len(data)/2] ^= 1
	_, err = model.Parse(data, shippedDigest(t))
	require.ErrorIs(t, err, model.ErrChecksum)
}

func TestParseRejects(t *testing.T) {
	digest := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	cases := map[string]string{
		"unknown field":   `{"type":"logistic_regression","features":[{"name":"a","weight":1,"max":1}],"extra":1}`,
		"wrong type":      `{"type":"tree","features":[{"name":"a","weight":1,"max":1}]}`,
		"no features":     `{"type":"logistic_regression","features":[]}`,
		"duplicate":       `{"type":"logistic_regression","features":[{"name":"a","max":1},{"name":"a","max":1}]}`,
		"min above max":   `{"type":"logistic_regression","features":[{"name":"a","min":2,"max":1}]}`,
		"not json":        `{"type":`,
		"nameless":        `{"type":"logistic_regression","features":[{"weight":1,"max":1}]}`,
		"trailing object": `{"type":"logistic_regression","features":[{"name":"a","max":1}]}{}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := model.Parse([]byte(body), digest(body))
			require.Error(t, err)
			assert.Nil(t, m)
		})
	}
	_, err := model.Parse([]byte("{}"), "not-hex")
	require.Error(t, err)
}

func TestScoreRejectsBadInput(t *testing.T) {
	m, err := model.Load(filepath.Join("..", "..", "model", "readmission.json"), shippedDigest(t))
	require.NoError(t, err)
	base := func() map[string]float64 {
		return map[string]float64{"age": 50, "prior_admissions_12m": 1, "length_of_stay_days": 3,
			"medication_count": 4, "charlson_index": 1, "emergency_admission": 0, "discharged_home": 1}
	}
	tests := []struct {
		name    string
		edit    func(map[string]float64)
		feature string
	}{
		{"missing", func(x map[string]float64) { delete(x, "age") }, "age"},
		{"unknown", func(x map[string]float64) { x["shoe_size"] = 1 }, "shoe_size"},
		{"out of range", func(x map[string]float64) { x["age"] = 130 }, "age"},
		{"negative", func(x map[string]float64) { x["charlson_index"] = -1 }, "charlson_index"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := base()
			tc.edit(x)
			_, err := m.Score(x)
			var ie *model.InputError
			require.True(t, errors.As(err, &ie), "got %v", err)
			assert.Equal(t, tc.feature, ie.Feature)
			assert.NotContains(t, err.Error(), "130")
		})
	}
}
