package secrets

import (
	"fmt"
	"strings"
)

// maxKeyLen is Key Vault's limit on secret names; keys share it so that
// every key can live in a vault.
const maxKeyLen = 127

// ValidKey reports whether key is in the canonical form: an upper-case ASCII
// letter followed by upper-case letters, digits and underscores, at most 127
// characters (DB_PASSWORD). One form everywhere means the environment, .env,
// mounted files and Key Vault cannot disagree about which key is which.
func ValidKey(key string) bool {
	if key == "" || len(key) > maxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '_'):
		default:
			return false
		}
	}
	return true
}

func checkKey(key string) error {
	if !ValidKey(key) {
		// The key is quoted with %q so control characters cannot forge log
		// lines; keys come from code and tags, not from secret stores.
		return fmt.Errorf("secrets: key %q: %w: want upper-case letters, digits and _ (like DB_PASSWORD), at most %d characters", truncate(key, 64), ErrInvalidKey, maxKeyLen)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// VaultName returns the Key Vault secret name for a canonical key with the
// default mapping: '_' becomes '-' (DB_PASSWORD -> DB-PASSWORD). Key Vault
// names are case-insensitive.
func VaultName(key string) string {
	return strings.ReplaceAll(key, "_", "-")
}

// validVaultName reports whether name fits Key Vault's rules: 1-127
// characters from 0-9, a-z, A-Z and '-'.
func validVaultName(name string) bool {
	if name == "" || len(name) > maxKeyLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
		default:
			return false
		}
	}
	return true
}
