package phimask_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"

	"github.com/phiguard/phiguard/phimask"
)

// A service wraps its handler once; every record is cleaned before it is
// written.
func ExampleNewHandler() {
	// ReplaceAttr drops the time so that the output is reproducible.
	next := slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	logger := slog.New(phimask.NewHandler(next, nil))
	logger.Info("admitted patient SSN 123-45-6789 to ward 4",
		"patientName", "Jane Roe",
		"note", "call back on 555-234-5678",
		"status", 201,
	)
	// Output:
	// {"level":"INFO","msg":"admitted patient SSN [REDACTED:SSN] to ward 4","patientName":"[REDACTED:NAME]","note":"call back on [REDACTED:PHONE]","status":201}
}

// With a key, PHI becomes a keyed token: the same value gives the same
// token in every record and every service sharing the key.
func ExampleNewHandler_keyedTokens() {
	key := []byte("example key: use 32 random bytes from a secret store")
	h := phimask.NewHandler(slog.DiscardHandler, &phimask.Options{Key: key})
	fmt.Println(h.Redact("SSN 123-45-6789"))
	fmt.Println(h.Redact("SSN 123 45 6789"))
	// Output:
	// SSN [SSN:668a7537b5bae830]
	// SSN [SSN:668a7537b5bae830]
}

// Safe Harbor keeps the de-identified part of dates, ZIP codes and ages.
func ExampleOptions_safeHarbor() {
	h := phimask.NewHandler(slog.DiscardHandler, &phimask.Options{SafeHarbor: true})
	fmt.Println(h.Redact("seen 2024-03-05, a 92-year-old from Springfield, IL 62704"))
	// Output:
	// seen 2024, a 90+-year-old from [REDACTED:ADDRESS], IL 627
}

func ExampleRedact() {
	fmt.Println(phimask.Redact("Patient: Jane Doe, DOB 03/05/1980, MRN: A1234567, trace 4bf92f3577b34da6a3ce929d0e0e4736"))
	// Output:
	// Patient: [REDACTED:NAME], DOB [REDACTED:DATE], MRN: [REDACTED:MRN], trace 4bf92f3577b34da6a3ce929d0e0e4736
}

func ExampleDetect() {
	text := "card 4111 1111 1111 1111, NPI 1234567893"
	for _, f := range phimask.Detect(text) {
		fmt.Println(f.Kind, text[f.Start:f.End] != "")
	}
	// Output:
	// CREDIT_CARD true
	// NPI true
}

func ExampleTokenize() {
	key := []byte("example key: use 32 random bytes from a secret store")
	fmt.Println(phimask.Tokenize(key, phimask.KindID, "patient-77812"))
	// Output:
	// [ID:cd7c74c1f79700b3]
}

func ExampleRedactURL() {
	u, _ := url.Parse("https://api.example.com/v1/patients/77812/notes?dob=1980-03-05&page=2")
	fmt.Println(phimask.RedactURL(u))
	// Output:
	// https://api.example.com/v1/patients/[REDACTED:ID]/notes?dob=[REDACTED:DATE]&page=2
}

func ExampleHandler_Stats() {
	h := phimask.NewHandler(slog.NewJSONHandler(io.Discard, nil), nil)
	logger := slog.New(h)
	logger.Info("lookup", "email", "jd@example.org", "note", "ssn 123-45-6789")
	logger.Info("lookup", "email", "other@example.org")
	st := h.Stats()
	fmt.Println(st.Records, st.ByKind[phimask.KindEmail], st.ByKey["email"], st.ByKind[phimask.KindSSN])
	// Output:
	// 2 2 2 1
}
