package phimask

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Synthetic PHI used by the tests in this file.
const (
	synthName = "Quenby Vandermolen"
	synthSSN  = "123-45-6789"
)

// mapValuer is a LogValuer that resolves to a map.
type mapValuer struct{ m map[string]any }

func (v mapValuer) LogValue() slog.Value { return slog.AnyValue(v.m) }

// logOne logs attr through a JSON phimask handler with opts and returns
// the output and the handler.
func logOne(t *testing.T, opts *Options, attr slog.Attr) (string, *Handler) {
	t.Helper()
	l, h, buf := newJSON(opts)
	l.LogAttrs(context.Background(), slog.LevelInfo, "m", attr)
	require.True(t, json.Valid(buf.Bytes()), "output is not valid JSON")
	return buf.String(), h
}

func TestHandlerAllowListContainers(t *testing.T) {
	t.Parallel()
	name := synthName
	type withPtr struct{ Comment *string }
	type withAny struct{ Comment any }
	tests := []struct {
		name string
		attr slog.Attr
		keep []string
	}{
		{"map value", slog.Any("data", map[string]any{"comment": name}), []string{`"data":{"[REDACTED]#1":"[REDACTED]"}`}},
		{"map of strings", slog.Any("data", map[string]string{"comment": name}), nil},
		{"string slice", slog.Any("comment", []string{name}), []string{`"comment":["[REDACTED]"]`}},
		{"any slice", slog.Any("comment", []any{name, 7}), []string{`"comment":["[REDACTED]","[REDACTED]"]`}},
		{"array", slog.Any("comment", [2]string{name, "x"}), nil},
		{"pointer field", slog.Any("data", withPtr{Comment: &name}), []string{`"Comment":"[REDACTED]"`}},
		{"interface field", slog.Any("data", withAny{Comment: name}), []string{`"Comment":"[REDACTED]"`}},
		{"pointer to string", slog.Any("comment", &name), nil},
		{"pointer to pointer", slog.Any("comment", ptr(&name)), nil},
		{"log valuer map", slog.Any("data", mapValuer{map[string]any{"comment": name}}), nil},
		{"log valuer map under allowed key", slog.Any("request_id", mapValuer{map[string]any{"comment": name}}), nil},
		{"allowed key holding a map", slog.Any("request_id", map[string]any{"comment": name, "request_id": "r-1"}), []string{`"request_id":"r-1"`}},
		{"nested slices", slog.Any("comment", [][]any{{[]string{name}}}), nil},
		{"bytes in slice", slog.Any("comment", [][]byte{[]byte(name)}), nil},
		{"error in slice", slog.Any("comment", []error{assert.AnError}), nil},
		{"slog value in slice", slog.Any("comment", []slog.Value{slog.StringValue(name)}), nil},
		{"map under denied key", slog.Any("data", map[string]string{name: "room 4"}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, h := logOne(t, &Options{AllowKeys: []string{"request_id"}}, tt.attr)
			assertNoLeak(t, out, []string{name, "room 4", assert.AnError.Error()}, []string{"name", "room", "error"})
			assertKept(t, out, tt.keep...)
			assert.Positive(t, h.Stats().Denied)
		})
	}
}

func TestHandlerMapKeysUnderPHIKeys(t *testing.T) {
	t.Parallel()
	type pair struct{ A, B string }
	key := []byte("0123456789abcdef0123456789abcdef")
	tests := []struct {
		name  string
		opts  *Options
		attr  slog.Attr
		leaks []string
		keep  []string
	}{
		{"string keys", nil, slog.Any("patients", map[string]string{synthName: "room 4", "Ann Other": "room 5"}),
			[]string{synthName, "Ann Other"}, []string{`"[REDACTED:NAME]#1":"[REDACTED:NAME]"`, `"[REDACTED:NAME]#2"`}},
		{"int keys", nil, slog.Any("ssn", map[int]string{123456789: "x"}), []string{"123456789"}, []string{`"[REDACTED:SSN]#1"`}},
		{"struct keys", nil, slog.Any("patients", map[pair]int{{"Quenby", "Vandermolen"}: 1}), []string{"Quenby", "Vandermolen"}, []string{`"[REDACTED:NAME]#1"`}},
		{"interface keys", nil, slog.Any("patients", map[any]int{synthName: 1}), []string{synthName}, []string{`"[REDACTED:NAME]#1"`}},
		{"keyed tokens", &Options{Key: key}, slog.Any("patients", map[string]int{synthName: 1}),
			[]string{synthName}, []string{`"` + Tokenize(key, KindName, synthName) + `":"[NAME:`}},
		{"nested under PHI key", nil, slog.Any("patient", map[string]any{"x": map[string]int{synthName: 1}}), []string{synthName}, nil},
		{"struct key elsewhere", nil, slog.Any("data", map[pair]int{{"Quenby", "Vandermolen"}: 1}), []string{"Quenby", "Vandermolen"}, []string{`"[REDACTED]#1":1`}},
		{"scanned elsewhere", nil, slog.Any("data", map[string]int{"call 555-234-5678": 1, "ok": 2}), []string{"555-234-5678"}, []string{`"call [REDACTED:PHONE]":1`, `"ok":2`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, _ := logOne(t, tt.opts, tt.attr)
			assertNoLeak(t, out, tt.leaks, nil)
			assertKept(t, out, tt.keep...)
		})
	}
}

func TestStatsByKeyHoldsNoMapKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    *Options
		attr    slog.Attr
		wantKey string
	}{
		{"PHI key", nil, slog.Any("patients", map[string]string{synthName: "room 4"}), "patients"},
		{"scanned value", nil, slog.Any("data", map[string]string{synthName: "ssn " + synthSSN}), "data"},
		{"PHI map key", nil, slog.Any("data", map[string]string{"ssn": synthName}), "data"},
		{"denied", &Options{AllowKeys: []string{"request_id"}}, slog.Any("data", map[string]string{synthName: "x"}), "data"},
		{"struct field", nil, slog.Any("data", struct{ Note map[string]string }{map[string]string{synthName: "ssn " + synthSSN}}), "Note"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, h := logOne(t, tt.opts, tt.attr)
			st := h.Stats()
			for k := range st.ByKey {
				if strings.Contains(k, "Quenby") || strings.Contains(k, "6789") {
					t.Errorf("Stats.ByKey holds a map key (%d bytes)", len(k))
				}
			}
			assert.Positive(t, st.ByKey[tt.wantKey], "entries count under their parent key")
		})
	}
}

func TestHandlerSlogAttrAsValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts *Options
		attr slog.Attr
		keep []string
	}{
		{"attr", nil, slog.Any("a", slog.String("lastName", synthName)), []string{`"a":{"lastName":"[REDACTED:NAME]"}`}},
		{"attr pointer", nil, slog.Any("a", ptr(slog.String("lastName", synthName))), []string{`"lastName":"[REDACTED:NAME]"`}},
		{"attr slice", nil, slog.Any("a", []slog.Attr{slog.String("ssn", synthSSN), slog.Int("n", 3)}), []string{`"a":{"ssn":"[REDACTED:SSN]","n":3}`}},
		{"attr slice in struct", nil, slog.Any("a", struct{ A []slog.Attr }{[]slog.Attr{slog.String("ssn", synthSSN), slog.Int("n", 3)}}), []string{`"A":[{"ssn":"[REDACTED:SSN]"},{"n":3}]`}},
		{"attr group", nil, slog.Any("a", slog.Group("g", slog.String("name", synthName))), []string{`"g":{"name":"[REDACTED:NAME]"}`}},
		{"value in struct", nil, slog.Any("a", struct{ V slog.Value }{slog.StringValue("ssn " + synthSSN)}), []string{`"V":"ssn [REDACTED:SSN]"`}},
		{"group value in map", nil, slog.Any("a", map[string]slog.Value{"v": slog.GroupValue(slog.String("firstName", synthName))}), []string{`"firstName":"[REDACTED:NAME]"`}},
		{"attr under PHI key", nil, slog.Any("patient", slog.String("note", synthName)), []string{`"note":"[REDACTED:NAME]"`}},
		{"attr under allow-list", &Options{AllowKeys: []string{"a"}}, slog.Any("a", slog.String("comment", synthName)), []string{`"comment":"[REDACTED]"`}},
		{"log valuer attr", nil, slog.Any("a", slog.Any("dob", mapValuer{map[string]any{"x": "1980-03-05"}})), []string{`"dob":{"[REDACTED:DATE]#1":"[REDACTED:DATE]"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, _ := logOne(t, tt.opts, tt.attr)
			assertNoLeak(t, out, []string{synthName, synthSSN, "1980-03-05"}, []string{"name", "ssn", "dob"})
			assertKept(t, out, tt.keep...)
		})
	}
}

func TestHandlerKeysPluralsRolesAndWords(t *testing.T) {
	t.Parallel()
	phi := []struct {
		key  string
		kind Kind
	}{
		{"patientNames", KindName}, {"names", KindName}, {"phoneNumbers", KindPhone}, {"emails", KindEmail},
		{"customerName", KindName}, {"insured_name", KindName}, {"callerName", KindName}, {"clientName", KindName},
		{"motherName", KindName}, {"caregiverName", KindName}, {"CUSTOMERNAME", KindName}, {"accountName", KindName},
		{"ssnLast4", KindSSN}, {"birth_year", KindDate}, {"dateOfBirthStr", KindDate}, {"primary_email_addr", KindEmail},
		{"addresses", KindAddress}, {"cities", KindAddress}, {"ssns", KindSSN}, {"home_phones", KindPhone},
		{"dob_text", KindDate}, {"userName", KindName}, {"email_hash", KindEmail}, {"customer_name_2", KindName},
		{"motherNames", KindName},
	}
	for _, tt := range phi {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			l, _, buf := newJSON(nil)
			l.Info("m", tt.key, "opaque-value-xyz")
			assertNoLeak(t, buf.String(), []string{"opaque-value-xyz"}, nil)
			assertKept(t, buf.String(), "[REDACTED:"+string(tt.kind)+"]")
		})
	}
	for _, key := range []string{"hostName", "HOSTNAME", "service_name", "fileName", "podName", "POD_NAME", "span_name",
		"container_name", "table_name", "queueName", "topic_name", "bucketName", "AZURE_KEYVAULT_KEY_NAME", "KEYVAULT_NAME",
		"objectName", "secretName", "metricName", "eventName", "routeName", "dbName", "schema_name", "indexName",
		"clusterName", "region_name", "zoneName", "tenantName", "appName", "funcName", "methodName", "packageName",
		"moduleName", "traceName", "typeName", "kindName", "keyName", "fieldName", "email_verified", "emailVerified",
		"ssn_provided", "phoneType", "phone_count", "status", "statuses", "analysis", "rename", "process_names"} {
		t.Run("not "+key, func(t *testing.T) {
			t.Parallel()
			l, _, buf := newJSON(nil)
			l.Info("m", key, "opaque-value-xyz")
			assertKept(t, buf.String(), "opaque-value-xyz")
		})
	}
}

func TestHandlerShortKeyFallsBack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		key  []byte
		want string
	}{
		{"empty", nil, "ssn [REDACTED:SSN]"},
		{"one byte", []byte("k"), "ssn [REDACTED:SSN]"},
		{"31 bytes", []byte("0123456789abcdef0123456789abcde"), "ssn [REDACTED:SSN]"},
		{"32 bytes", []byte("0123456789abcdef0123456789abcdef"), "ssn " + Tokenize([]byte("0123456789abcdef0123456789abcdef"), KindSSN, synthSSN)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewHandler(nil, &Options{Key: tt.key})
			assertRedacted(t, tt.want, h.Redact("ssn "+synthSSN))
		})
	}
}
