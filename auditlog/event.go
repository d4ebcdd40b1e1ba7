package auditlog

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/phiguard/phiguard/phimask"
)

// Action is what the actor did, as the FHIR R4 AuditEvent.action code.
type Action string

// The FHIR R4 audit-event-action codes.
const (
	ActionCreate  Action = "C"
	ActionRead    Action = "R"
	ActionUpdate  Action = "U"
	ActionDelete  Action = "D"
	ActionExecute Action = "E"
)

func (a Action) valid() bool {
	switch a {
	case ActionCreate, ActionRead, ActionUpdate, ActionDelete, ActionExecute:
		return true
	}
	return false
}

// Outcome is the FHIR R4 AuditEvent.outcome code.
type Outcome int

// The FHIR R4 audit-event-outcome codes.
const (
	OutcomeSuccess        Outcome = 0
	OutcomeMinorFailure   Outcome = 4
	OutcomeSeriousFailure Outcome = 8
	OutcomeMajorFailure   Outcome = 12
)

func (o Outcome) valid() bool {
	switch o {
	case OutcomeSuccess, OutcomeMinorFailure, OutcomeSeriousFailure, OutcomeMajorFailure:
		return true
	}
	return false
}

// Coding is a code from a code system (FHIR Coding).
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

// Code systems used by the helpers of this package.
const (
	SystemDICOM          = "http://dicom.nema.org/resources/ontology/DCM"
	SystemRestful        = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	SystemFHIRInteract   = "http://hl7.org/fhir/restful-interaction"
	SystemPurposeOfUse   = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemEntityType     = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	SystemObjectRole     = "http://terminology.hl7.org/CodeSystem/object-role"
	SystemSecuritySource = "http://terminology.hl7.org/CodeSystem/security-source-type"
)

// Common event types.
var (
	// TypeRESTful is a RESTful operation on a FHIR-like API.
	TypeRESTful = Coding{System: SystemRestful, Code: "rest", Display: "RESTful Operation"}
	// TypePatientRecord is an access to a patient record (DICOM 110110).
	TypePatientRecord = Coding{System: SystemDICOM, Code: "110110", Display: "Patient Record"}
	// TypeLogin is a user authentication (DICOM 110114).
	TypeLogin = Coding{System: SystemDICOM, Code: "110114", Display: "User Authentication"}
)

// Actor is who performed the action (FHIR AuditEvent.agent).
//
// ID must be a workforce or service identity (user object ID, client ID), not
// a patient identifier: it is kept as given so that "everything one user did"
// can be reported. ClientIP is pseudonymized unless Options.KeepClientIP is
// set; UserAgent is scrubbed with phimask.Redact.
type Actor struct {
	ID        string   `json:"id"`
	Roles     []string `json:"roles,omitempty"`
	ClientIP  string   `json:"clientIp,omitempty"`
	UserAgent string   `json:"userAgent,omitempty"`
	// Requestor is true when this actor initiated the event (FHIR
	// agent.requestor). Record sets it to true when no other field says so,
	// as the single actor of an event is its requestor.
	Requestor bool `json:"requestor"`
}

// Observer is the service that detected and recorded the event (FHIR
// AuditEvent.source).
type Observer struct {
	Service  string `json:"service"`
	Instance string `json:"instance,omitempty"`
	Site     string `json:"site,omitempty"`
}

// Entity is a data object the action touched (FHIR AuditEvent.entity).
//
// Identifier is PHI as given by the caller (a patient MRN, a record ID):
// Record replaces it by phimask.Tokenize(key, Kind, Identifier) before the
// event leaves the process, so the trail holds only the keyed token.
type Entity struct {
	// Type is the resource type, e.g. "Patient", "Observation".
	Type string `json:"type"`
	// Identifier is the entity identifier; a token once recorded.
	Identifier string `json:"identifier"`
	// Kind is the phimask kind used for the token; KindID when empty.
	Kind phimask.Kind `json:"-"`
	// Role is the object-role code: "1" patient, "3" report, "4" domain
	// resource, ... (http://terminology.hl7.org/CodeSystem/object-role).
	Role string `json:"role,omitempty"`
}

// Event is one audited action, mappable to a FHIR R4 AuditEvent (see FHIR).
//
// Record fills ID and Time when they are empty, normalizes Time to UTC, and
// replaces every PHI-bearing field (entity identifiers, client IP, free text)
// by its token or scrubbed form; the caller's Event is not modified.
type Event struct {
	// ID is unique per event (128 random bits, hex) and is the
	// de-duplication key downstream (at-least-once delivery).
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Type    Coding    `json:"type"`
	Subtype []Coding  `json:"subtype,omitempty"`
	Action  Action    `json:"action"`
	Outcome Outcome   `json:"outcome"`
	// OutcomeDesc is free text; it is scrubbed with phimask.Redact.
	OutcomeDesc string   `json:"outcomeDesc,omitempty"`
	Actor       Actor    `json:"actor"`
	Observer    Observer `json:"observer"`
	Entities    []Entity `json:"entities,omitempty"`
	// PurposeOfUse are v3-ActReason codes, e.g. "TREAT", "HPAYMT", "HOPERAT".
	PurposeOfUse []string `json:"purposeOfUse,omitempty"`
	RequestID    string   `json:"requestId,omitempty"`
	TraceID      string   `json:"traceId,omitempty"`
}

// newEventID returns 128 random bits in hex.
func newEventID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auditlog: event id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// validate checks the elements the trail and FHIR require. Messages name the
// field only, never its value.
func (e *Event) validate() error {
	switch {
	case e.Type.Code == "":
		return fmt.Errorf("%w: type.code is empty", ErrInvalidEvent)
	case !e.Action.valid():
		return fmt.Errorf("%w: action must be one of C R U D E", ErrInvalidEvent)
	case !e.Outcome.valid():
		return fmt.Errorf("%w: outcome must be 0, 4, 8 or 12", ErrInvalidEvent)
	case e.Actor.ID == "":
		return fmt.Errorf("%w: actor.id is empty", ErrInvalidEvent)
	case e.Observer.Service == "":
		return fmt.Errorf("%w: observer.service is empty", ErrInvalidEvent)
	case e.Time.Year() < 0 || e.Time.Year() > 9999:
		return fmt.Errorf("%w: time outside years 0-9999", ErrInvalidEvent)
	}
	for i := range e.Entities {
		if e.Entities[i].Identifier == "" {
			return fmt.Errorf("%w: entities[%d].identifier is empty", ErrInvalidEvent, i)
		}
	}
	return nil
}

// FHIR types, reduced to the elements this package fills.
type (
	fhirCodeableConcept struct {
		Coding []Coding `json:"coding,omitempty"`
		Text   string   `json:"text,omitempty"`
	}
	fhirIdentifier struct {
		System string `json:"system,omitempty"`
		Value  string `json:"value"`
	}
	fhirReference struct {
		Type       string          `json:"type,omitempty"`
		Identifier *fhirIdentifier `json:"identifier,omitempty"`
		Display    string          `json:"display,omitempty"`
	}
	fhirNetwork struct {
		Address string `json:"address"`
		Type    string `json:"type"`
	}
	fhirAgent struct {
		Role      []fhirCodeableConcept `json:"role,omitempty"`
		Who       fhirReference         `json:"who"`
		Requestor bool                  `json:"requestor"`
		Network   *fhirNetwork          `json:"network,omitempty"`
		Extension []fhirExtension       `json:"extension,omitempty"`
	}
	fhirExtension struct {
		URL         string `json:"url"`
		ValueString string `json:"valueString"`
	}
	fhirSource struct {
		Site     string        `json:"site,omitempty"`
		Observer fhirReference `json:"observer"`
		Type     []Coding      `json:"type,omitempty"`
	}
	fhirEntity struct {
		What fhirReference `json:"what"`
		Type *Coding       `json:"type,omitempty"`
		Role *Coding       `json:"role,omitempty"`
	}
	fhirAuditEvent struct {
		ResourceType   string                `json:"resourceType"`
		ID             string                `json:"id,omitempty"`
		Type           Coding                `json:"type"`
		Subtype        []Coding              `json:"subtype,omitempty"`
		Action         Action                `json:"action"`
		Recorded       string                `json:"recorded"`
		Outcome        string                `json:"outcome"`
		OutcomeDesc    string                `json:"outcomeDesc,omitempty"`
		PurposeOfEvent []fhirCodeableConcept `json:"purposeOfEvent,omitempty"`
		Agent          []fhirAgent           `json:"agent"`
		Source         fhirSource            `json:"source"`
		Entity         []fhirEntity          `json:"entity,omitempty"`
		Meta           *fhirMeta             `json:"meta,omitempty"`
	}
	fhirMeta struct {
		Tag []Coding `json:"tag,omitempty"`
	}
)

// FHIR returns the event as a FHIR R4 AuditEvent resource in JSON, with the
// required elements type, recorded, agent (with requestor) and
// source.observer. Call it on a recorded event (as read back from the trail)
// to get the pseudonymized form; on an unrecorded event it maps the fields as
// they are. Request and trace IDs go into agent extensions.
func (e Event) FHIR() ([]byte, error) {
	if err := e.validate(); err != nil {
		return nil, err
	}
	if e.Time.IsZero() {
		return nil, fmt.Errorf("%w: time is zero", ErrInvalidEvent)
	}
	ae := fhirAuditEvent{
		ResourceType: "AuditEvent",
		ID:           e.ID,
		Type:         e.Type,
		Subtype:      e.Subtype,
		Action:       e.Action,
		Recorded:     e.Time.UTC().Format(time.RFC3339Nano),
		Outcome:      strconv.Itoa(int(e.Outcome)),
		OutcomeDesc:  e.OutcomeDesc,
	}
	for _, p := range e.PurposeOfUse {
		ae.PurposeOfEvent = append(ae.PurposeOfEvent, fhirCodeableConcept{Coding: []Coding{{System: SystemPurposeOfUse, Code: p}}})
	}
	agent := fhirAgent{
		Who:       fhirReference{Identifier: &fhirIdentifier{Value: e.Actor.ID}},
		Requestor: e.Actor.Requestor,
	}
	for _, r := range e.Actor.Roles {
		agent.Role = append(agent.Role, fhirCodeableConcept{Text: r})
	}
	if e.Actor.ClientIP != "" {
		// Network type 2 is "IP address".
		agent.Network = &fhirNetwork{Address: e.Actor.ClientIP, Type: "2"}
	}
	if e.Actor.UserAgent != "" {
		agent.Extension = append(agent.Extension, fhirExtension{URL: "urn:phiguard:audit:user-agent", ValueString: e.Actor.UserAgent})
	}
	if e.RequestID != "" {
		agent.Extension = append(agent.Extension, fhirExtension{URL: "urn:phiguard:audit:request-id", ValueString: e.RequestID})
	}
	if e.TraceID != "" {
		agent.Extension = append(agent.Extension, fhirExtension{URL: "urn:phiguard:audit:trace-id", ValueString: e.TraceID})
	}
	ae.Agent = []fhirAgent{agent}
	observer := e.Observer.Service
	if e.Observer.Instance != "" {
		observer += "/" + e.Observer.Instance
	}
	ae.Source = fhirSource{
		Site:     e.Observer.Site,
		Observer: fhirReference{Display: observer, Identifier: &fhirIdentifier{Value: observer}},
		// Source type 4 is "Application Server".
		Type: []Coding{{System: SystemSecuritySource, Code: "4", Display: "Application Server"}},
	}
	for _, en := range e.Entities {
		fe := fhirEntity{
			What: fhirReference{Type: en.Type, Identifier: &fhirIdentifier{Value: en.Identifier}},
			// Entity type 2 is "System Object" (a resource of the API).
			Type: &Coding{System: SystemEntityType, Code: "2", Display: "System Object"},
		}
		if en.Role != "" {
			fe.Role = &Coding{System: SystemObjectRole, Code: en.Role}
		}
		ae.Entity = append(ae.Entity, fe)
	}
	b, err := json.Marshal(ae)
	if err != nil {
		return nil, fmt.Errorf("auditlog: fhir: %w", err)
	}
	return b, nil
}
