package auditlog_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/phiguard/phiguard/auditlog"
	"github.com/phiguard/phiguard/phimask"
)

// Example records an access to a patient record to a signed trail on disk,
// closes it, and verifies it.
func Example() {
	dir, err := os.MkdirTemp("", "audit-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// In production both keys come from Key Vault or a mounted secret.
	seed := sha256.Sum256([]byte("example signing key"))
	signingKey := ed25519.NewKeyFromSeed(seed[:])
	pseudonymKey := sha256.Sum256([]byte("example pseudonym key"))

	trail, err := auditlog.NewFileSink(dir, &auditlog.FileOptions{SigningKey: signingKey})
	if err != nil {
		log.Fatal(err)
	}
	logger, err := auditlog.New(&auditlog.Options{
		PseudonymKey: pseudonymKey[:],
		Observer:     auditlog.Observer{Service: "records-api", Instance: "pod-1"},
	}, trail)
	if err != nil {
		log.Fatal(err)
	}
	err = logger.Record(context.Background(), auditlog.Event{
		Type:         auditlog.TypePatientRecord,
		Action:       auditlog.ActionRead,
		Outcome:      auditlog.OutcomeSuccess,
		Actor:        auditlog.Actor{ID: "user-42", Roles: []string{"nurse"}},
		Entities:     []auditlog.Entity{{Type: "Patient", Identifier: "MRN-0001", Kind: phimask.KindMRN, Role: "1"}},
		PurposeOfUse: []string{"TREAT"},
	})
	if err != nil {
		log.Fatal(err) // fail closed: do not serve the record
	}
	if err := logger.Close(); err != nil {
		log.Fatal(err)
	}

	report, err := auditlog.Verify(dir, signingKey.Public().(ed25519.PublicKey), &auditlog.VerifyOptions{RequireSealed: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("events:", report.Events, "sealed:", report.Sealed)
	// Output: events: 1 sealed: true
}

// ExampleKQLLiteral shows how values are quoted for a Log Analytics query.
func ExampleKQLLiteral() {
	lit, _ := auditlog.KQLLiteral(`x" | take 1 // drop`)
	fmt.Println(lit)
	_, err := auditlog.KQLLiteral("hidden\u202etext")
	fmt.Println(err != nil)
	// Output:
	// "x\" | take 1 // drop"
	// true
}

// ExampleEvent_FHIR prints the FHIR R4 AuditEvent of a recorded event.
func ExampleEvent_FHIR() {
	var out bytes.Buffer
	key := sha256.Sum256([]byte("example pseudonym key"))
	logger, err := auditlog.New(&auditlog.Options{PseudonymKey: key[:]}, auditlog.NewWriterSink(&out))
	if err != nil {
		log.Fatal(err)
	}
	defer logger.Close()
	_ = logger.Record(context.Background(), auditlog.Event{
		Type: auditlog.TypeRESTful, Action: auditlog.ActionUpdate,
		Actor:    auditlog.Actor{ID: "svc-billing"},
		Observer: auditlog.Observer{Service: "billing"},
		Entities: []auditlog.Entity{{Type: "Claim", Identifier: "C-77"}},
	})
	var recorded auditlog.Event
	if err := json.Unmarshal(out.Bytes(), &recorded); err != nil {
		log.Fatal(err)
	}
	fhir, err := recorded.FHIR()
	if err != nil {
		log.Fatal(err)
	}
	var ae struct {
		ResourceType string `json:"resourceType"`
		Action       string `json:"action"`
		Outcome      string `json:"outcome"`
		Agent        []struct {
			Requestor bool `json:"requestor"`
		} `json:"agent"`
		Source struct {
			Observer struct {
				Display string `json:"display"`
			} `json:"observer"`
		} `json:"source"`
	}
	if err := json.Unmarshal(fhir, &ae); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ae.ResourceType, ae.Action, ae.Outcome, ae.Agent[0].Requestor, ae.Source.Observer.Display)
	// Output: AuditEvent U 0 true billing
}

// ExampleMiddleware audits every request to a handler.
func ExampleMiddleware() {
	key := sha256.Sum256([]byte("example pseudonym key"))
	logger, err := auditlog.New(&auditlog.Options{PseudonymKey: key[:], Observer: auditlog.Observer{Service: "api"}},
		auditlog.NewWriterSink(os.Stdout))
	if err != nil {
		log.Fatal(err)
	}
	defer logger.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /patients/{id}", func(w http.ResponseWriter, r *http.Request) { /* ... */ })
	describe := func(r *http.Request, status int) (auditlog.Event, bool) {
		if r.PathValue("id") == "" {
			return auditlog.Event{}, false
		}
		return auditlog.Event{
			Type:     auditlog.TypeRESTful,
			Action:   auditlog.ActionRead,
			Actor:    auditlog.Actor{ID: r.Header.Get("X-User-Id")}, // from the verified token in practice
			Entities: []auditlog.Entity{{Type: "Patient", Identifier: r.PathValue("id"), Role: "1"}},
		}, true
	}
	handler := auditlog.Middleware(logger, describe, nil, mux)
	_ = handler // http.ListenAndServe(":8080", handler)
}
