package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"golang.org/x/sync/singleflight"
)

// KeyVaultOptions configures [FromKeyVault]. A nil *KeyVaultOptions means
// the defaults.
type KeyVaultOptions struct {
	// Name identifies the vault in provenance, errors and logs, e.g. the
	// vault's host name. Default: the host name learnt from the vault's
	// first answer, "keyvault" until then.
	Name string

	// Prefix is put before every mapped secret name, for a vault shared by
	// several services ("billing-" maps DB_PASSWORD to billing-DB-PASSWORD).
	Prefix string

	// Names overrides the mapping for some keys: canonical key -> Key Vault
	// secret name. Every other key maps to Prefix + key with '_' turned into
	// '-'. NewLoader refuses a mapping under which two keys would name the
	// same secret (Key Vault names are case-insensitive): ErrNameCollision.
	Names map[string]string
}

// FromKeyVault returns a Source reading secrets from Azure Key Vault through
// the caller's client. The client carries the caller's credential (see the
// package doc) and its retry policy: azcore retries 408, 429, 500, 502, 503
// and 504 with exponential back-off and honours Retry-After; tune it with
// azsecrets.ClientOptions.Retry.
//
// Behaviour:
//   - each key is fetched once (latest version) and kept in memory;
//   - disabled, expired and not-yet-valid secrets are skipped, as if absent,
//     and the skip is logged (key, vault and reason);
//   - on refresh, one listing of the vault's secret properties finds what
//     changed (a different Attributes.Updated, a secret that appeared,
//     vanished, or became usable or unusable), and only those are fetched
//     again. Without list permission every known key is fetched again.
//
// Errors name the key, the vault and the HTTP status, never the value.
func FromKeyVault(client *azsecrets.Client, opts *KeyVaultOptions) Source {
	s := &kvSource{client: client, entries: map[string]*kvEntry{}, log: discardLogger()}
	if opts != nil {
		s.opts = *opts
		s.opts.Names = make(map[string]string, len(opts.Names))
		for k, v := range opts.Names {
			s.opts.Names[k] = v
		}
	}
	return s
}

type kvSource struct {
	client *azsecrets.Client
	opts   KeyVaultOptions
	log    *slog.Logger
	sf     singleflight.Group

	mu      sync.Mutex
	host    string              // learnt from answers, for Name
	entries map[string]*kvEntry // by lower-case secret name
}

// kvEntry caches one secret name's last answer, including "absent".
type kvEntry struct {
	found   bool
	value   Value
	updated time.Time // Attributes.Updated of the version we hold
	stale   bool      // fetch again on next lookup
}

func (s *kvSource) Name() string {
	if s.opts.Name != "" {
		return "keyvault:" + s.opts.Name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.host != "" {
		return "keyvault:" + s.host
	}
	return "keyvault"
}

func (s *kvSource) learnHost(rawURL string) {
	if s.opts.Name != "" || rawURL == "" {
		return
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return
	}
	s.mu.Lock()
	if s.host == "" {
		s.host = u.Host
	}
	s.mu.Unlock()
}

func (s *kvSource) setup(log *slog.Logger) error {
	if s.client == nil {
		return errors.New("secrets: FromKeyVault: nil client")
	}
	s.log = log
	if s.opts.Prefix != "" && !validVaultName(s.opts.Prefix) {
		return fmt.Errorf("secrets: %s: prefix %q: %w: want 0-9, a-z, A-Z and -", s.Name(), s.opts.Prefix, ErrInvalidKey)
	}
	// Every key without an override maps to a distinct name (the default
	// mapping is one-to-one on canonical keys), so collisions can only come
	// from overrides: against each other, or against the default name of a
	// key that has none.
	byName := map[string]string{}
	for key, name := range s.opts.Names {
		if err := checkKey(key); err != nil {
			return fmt.Errorf("secrets: %s: Names: %w", s.Name(), err)
		}
		if !validVaultName(name) {
			return fmt.Errorf("secrets: %s: Names[%s] = %q: %w: want 1-127 of 0-9, a-z, A-Z and -", s.Name(), key, name, ErrInvalidKey)
		}
		lname := strings.ToLower(name)
		if other, ok := byName[lname]; ok {
			a, b := minMax(key, other)
			return fmt.Errorf("secrets: %s: keys %s and %s both map to secret %q: %w", s.Name(), a, b, name, ErrNameCollision)
		}
		byName[lname] = key
	}
	for lname, key := range byName {
		rest, ok := strings.CutPrefix(lname, strings.ToLower(s.opts.Prefix))
		if !ok {
			continue
		}
		other := strings.ToUpper(strings.ReplaceAll(rest, "-", "_"))
		if other == key || !ValidKey(other) {
			continue
		}
		if _, overridden := s.opts.Names[other]; overridden {
			continue
		}
		return fmt.Errorf("secrets: %s: key %s maps to %q, the default name of key %s: %w", s.Name(), key, s.opts.Names[key], other, ErrNameCollision)
	}
	return nil
}

func minMax(a, b string) (string, string) {
	if a < b {
		return a, b
	}
	return b, a
}

// secretName maps a canonical key to its Key Vault secret name.
func (s *kvSource) secretName(key string) string {
	if n, ok := s.opts.Names[key]; ok {
		return n
	}
	return s.opts.Prefix + VaultName(key)
}

func (s *kvSource) Lookup(ctx context.Context, key string) (Value, bool, error) {
	name := s.secretName(key)
	if !validVaultName(name) {
		return Value{}, false, &KeyError{Key: key, Source: s.Name(), Err: fmt.Errorf("%w: secret name %q is too long for Key Vault", ErrInvalidKey, truncate(name, 64))}
	}
	lname := strings.ToLower(name)
	s.mu.Lock()
	e := s.entries[lname]
	fresh := e != nil && !e.stale
	s.mu.Unlock()
	if fresh {
		return e.value, e.found, nil
	}
	r, err, _ := s.sf.Do(lname, func() (any, error) { return s.fetch(ctx, key, name) })
	if err != nil {
		return Value{}, false, err
	}
	e = r.(*kvEntry)
	return e.value, e.found, nil
}

// skipReason says why a secret with these attributes must not be used, or "".
func skipReason(a *azsecrets.SecretAttributes, now time.Time) string {
	if a == nil {
		return ""
	}
	switch {
	case a.Enabled != nil && !*a.Enabled:
		return "disabled"
	case a.Expires != nil && !now.Before(*a.Expires):
		return "expired"
	case a.NotBefore != nil && now.Before(*a.NotBefore):
		return "not yet valid"
	}
	return ""
}

func (s *kvSource) fetch(ctx context.Context, key, name string) (*kvEntry, error) {
	resp, err := s.client.GetSecret(ctx, name, "", nil)
	e := &kvEntry{}
	switch {
	case err == nil:
		if resp.ID != nil {
			s.learnHost(string(*resp.ID))
		}
		if why := skipReason(resp.Attributes, time.Now()); why != "" {
			s.log.LogAttrs(ctx, slog.LevelWarn, "secrets: skipping Key Vault secret",
				slog.String("key", key), slog.String("source", s.Name()), slog.String("reason", why))
		} else if resp.Value != nil && *resp.Value != "" {
			e.found = true
			e.value = NewValue(*resp.Value)
		}
		if resp.Attributes != nil && resp.Attributes.Updated != nil {
			e.updated = *resp.Attributes.Updated
		}
	case isNotFound(err):
	case isDisabled(err):
		s.log.LogAttrs(ctx, slog.LevelWarn, "secrets: skipping Key Vault secret",
			slog.String("key", key), slog.String("source", s.Name()), slog.String("reason", "disabled"))
	default:
		return nil, &KeyError{Key: key, Source: s.Name(), Err: s.wrap("GET secret "+name, err)}
	}
	s.mu.Lock()
	s.entries[strings.ToLower(name)] = e
	s.mu.Unlock()
	return e, nil
}

func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// isDisabled recognises Key Vault's answer to a GET of a disabled secret:
// 403 with the code SecretDisabled (top level or inner error).
func isDisabled(err error) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		return false
	}
	return re.ErrorCode == "SecretDisabled" || strings.Contains(re.Error(), "SecretDisabled")
}

// VaultError is a failed call to Key Vault. Its message has the operation,
// the vault and the HTTP status and error code; Unwrap gives the SDK error
// (an *azcore.ResponseError when the vault answered).
type VaultError struct {
	Op         string // e.g. "GET secret DB-PASSWORD"
	Vault      string
	StatusCode int    // 0 when the vault did not answer
	Code       string // Key Vault error code, e.g. "Throttled"
	Err        error
}

func (e *VaultError) Error() string {
	if e.StatusCode == 0 {
		// No answer: the SDK's message is about the transport or the
		// credential (no secret there), and says why.
		return fmt.Sprintf("%s: %s: %v", e.Vault, e.Op, e.Err)
	}
	msg := fmt.Sprintf("%s: %s: HTTP %d", e.Vault, e.Op, e.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	return msg
}

func (e *VaultError) Unwrap() error { return e.Err }

func (s *kvSource) wrap(op string, err error) error {
	ve := &VaultError{Op: op, Err: err}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		ve.StatusCode, ve.Code = re.StatusCode, re.ErrorCode
		if re.RawResponse != nil && re.RawResponse.Request != nil {
			s.learnHost(re.RawResponse.Request.URL.String())
		}
	}
	ve.Vault = s.Name()
	return ve
}

// Refresh lists the vault's secret properties and marks for a new GET every
// cached secret that changed. The listing holds no values.
func (s *kvSource) Refresh(ctx context.Context) error {
	props, err := s.list(ctx, false)
	if err != nil {
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
			// No list permission: fall back to fetching every known
			// secret again.
			s.log.LogAttrs(ctx, slog.LevelDebug, "secrets: no list permission on Key Vault, refreshing every secret",
				slog.String("source", s.Name()))
			s.mu.Lock()
			for _, e := range s.entries {
				e.stale = true
			}
			s.mu.Unlock()
			return nil
		}
		return err
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for lname, e := range s.entries {
		p, listed := props[lname]
		switch {
		case !listed:
			// Deleted, or never there: only a held value needs a new look.
			e.stale = e.found
		case !e.found:
			// Absent, skipped or failed before; fetch again once it is usable.
			e.stale = skipReason(p.Attributes, now) == ""
		default:
			var updated time.Time
			if p.Attributes != nil && p.Attributes.Updated != nil {
				updated = *p.Attributes.Updated
			}
			e.stale = skipReason(p.Attributes, now) != "" || !updated.Equal(e.updated)
		}
	}
	return nil
}

// list returns the vault's secret properties by lower-case name; onePage
// stops after the first page (for Check).
func (s *kvSource) list(ctx context.Context, onePage bool) (map[string]*azsecrets.SecretProperties, error) {
	out := map[string]*azsecrets.SecretProperties{}
	pager := s.client.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("secrets: %w", s.wrap("list secret properties", err))
		}
		for _, p := range page.Value {
			if p == nil || p.ID == nil {
				continue
			}
			s.learnHost(string(*p.ID))
			out[strings.ToLower(p.ID.Name())] = p
		}
		if onePage {
			break
		}
	}
	return out, nil
}

// Check asks the vault for one page of secret properties. Any answer from
// the vault proves it reachable with a valid token, so 403 (no list
// permission) counts as healthy.
func (s *kvSource) Check(ctx context.Context) error {
	_, err := s.list(ctx, true)
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		return nil
	}
	return err
}
