package deploy_test

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// No Bicep compiler runs on this machine (the Bicep CLI is a .NET binary
// fetched from outside the package registries), so these tests read the
// template's text. The checker below is deliberately small: it removes
// comments, finds each top-level `resource`/`param` declaration, cuts out
// its body by matching braces outside string literals, and looks up
// properties by key inside a body. It understands Bicep's single-quoted
// strings (with \-escapes and ${...} interpolation), ”' multi-line strings
// and // and /* */ comments; it does not evaluate expressions. `az bicep
// build` (or `az deployment group what-if`) in the operator guide is the
// full check before a deployment.

const bicepPath = "deploy/containerapps/main.bicep"

// stripBicepComments blanks comments, leaving strings and line structure.
func stripBicepComments(src string) string {
	var b strings.Builder
	for i := 0; i < len(src); {
		switch {
		case strings.HasPrefix(src[i:], "'''"):
			end := strings.Index(src[i+3:], "'''")
			if end < 0 {
				end = len(src) - i - 3
			}
			b.WriteString(src[i : i+3+end+min(3, len(src)-(i+3+end))])
			i += 3 + end + 3
		case src[i] == '\'':
			j := i + 1
			for j < len(src) && src[j] != '\'' && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(src))
			b.WriteString(src[i:j])
			i = j
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return b.String()
			}
			b.WriteString(strings.Repeat("\n", strings.Count(src[i:i+2+end+2], "\n")))
			i += 2 + end + 2
		default:
			b.WriteByte(src[i])
			i++
		}
	}
	return b.String()
}

// matchBrace returns the index just past the bracket that closes the one at
// open ('{' or '['), skipping string literals.
func matchBrace(src string, open int) int {
	depth := 0
	for i := open; i < len(src); i++ {
		switch src[i] {
		case '\'':
			i++
			for i < len(src) && src[i] != '\'' {
				if src[i] == '\\' {
					i++
				}
				i++
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

type bicepResource struct {
	symbol, typ, apiVersion string
	existing                bool
	body                    string
}

type bicepParam struct {
	name, typ, decorators, def string
}

type bicepFile struct {
	resources []bicepResource
	params    map[string]bicepParam
	vars      map[string]string
}

var (
	bicepResourceRe = regexp.MustCompile(`(?m)^resource\s+(\w+)\s+'([^'@]+)@([^']+)'\s+(existing\s+)?=\s+`)
	bicepParamRe    = regexp.MustCompile(`(?m)^param\s+(\w+)\s+(\w+)(?:\s*=\s*(.+))?$`)
	bicepVarRe      = regexp.MustCompile(`(?m)^var\s+(\w+)\s*=\s*`)
)

func parseBicep(src string) (*bicepFile, error) {
	code := stripBicepComments(src)
	f := &bicepFile{params: map[string]bicepParam{}, vars: map[string]string{}}
	for _, m := range bicepResourceRe.FindAllStringSubmatchIndex(code, -1) {
		open := m[1]
		if open >= len(code) || code[open] != '{' {
			return nil, fmt.Errorf("resource %s: body does not start with {", code[m[2]:m[3]])
		}
		end := matchBrace(code, open)
		if end < 0 {
			return nil, fmt.Errorf("resource %s: unbalanced braces", code[m[2]:m[3]])
		}
		f.resources = append(f.resources, bicepResource{
			symbol: code[m[2]:m[3]], typ: code[m[4]:m[5]], apiVersion: code[m[6]:m[7]],
			existing: m[8] >= 0, body: code[open:end],
		})
	}
	lines := strings.Split(code, "\n")
	for i, l := range lines {
		m := bicepParamRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		var dec []string
		for j := i - 1; j >= 0 && strings.HasPrefix(strings.TrimSpace(lines[j]), "@"); j-- {
			dec = append(dec, strings.TrimSpace(lines[j]))
		}
		f.params[m[1]] = bicepParam{name: m[1], typ: m[2], decorators: strings.Join(dec, "\n"), def: strings.TrimSpace(m[3])}
	}
	for _, m := range bicepVarRe.FindAllStringSubmatchIndex(code, -1) {
		start := m[1]
		end := strings.IndexByte(code[start:], '\n') + start
		if code[start] == '{' || code[start] == '[' {
			end = matchBrace(code, start)
		}
		f.vars[code[m[2]:m[3]]] = code[start:end]
	}
	return f, nil
}

func (f *bicepFile) byType(typ string) []bicepResource {
	var out []bicepResource
	for _, r := range f.resources {
		if r.typ == typ {
			out = append(out, r)
		}
	}
	return out
}

func (f *bicepFile) bySymbol(sym string) (bicepResource, bool) {
	for _, r := range f.resources {
		if r.symbol == sym {
			return r, true
		}
	}
	return bicepResource{}, false
}

// prop returns the value of the first `key:` in body (at any depth): the
// rest of the line, or the whole bracketed block when the value opens one.
func prop(body, key string) (string, bool) {
	re := regexp.MustCompile(`(?m)(^|[\s{])` + regexp.QuoteMeta(key) + `:\s*`)
	loc := re.FindStringIndex(body)
	if loc == nil {
		return "", false
	}
	start := loc[1]
	if start < len(body) && (body[start] == '{' || body[start] == '[') {
		return body[start:matchBrace(body, start)], true
	}
	end := strings.IndexAny(body[start:], "\n}")
	if end < 0 {
		end = len(body) - start
	}
	return strings.TrimSpace(body[start : start+end]), true
}

func propIs(body, key, want string) bool {
	v, ok := prop(body, key)
	return ok && v == want
}

// intValue resolves a literal or a parameter to the smallest value it can
// take: the literal, or the parameter's @minValue (its default otherwise).
func (f *bicepFile) intValue(expr string) (int, bool) {
	if n, err := strconv.Atoi(expr); err == nil {
		return n, true
	}
	p, ok := f.params[expr]
	if !ok {
		return 0, false
	}
	if m := regexp.MustCompile(`@minValue\((\d+)\)`).FindStringSubmatch(p.decorators); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, true
	}
	n, err := strconv.Atoi(p.def)
	return n, err == nil
}

var builtinRoles = map[string]string{
	"keyVaultSecretsUser":        "4633458b-17de-408a-b874-0445c86b69e6",
	"keyVaultCryptoUser":         "12338af0-0e69-4776-bea7-57ae8d297424",
	"storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
	"monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
	"logAnalyticsReader":         "73c42c96-874c-492b-b04d-ab87d138a893",
	"acrPull":                    "7f951dda-4ed3-4680-a7ca-43fe172d538d",
}

// checkBicep returns the violations of the deployment rules in a template.
func checkBicep(src string) []string {
	f, err := parseBicep(src)
	if err != nil {
		return []string{"parse: " + err.Error()}
	}
	var v []string
	fail := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	// Parameters: no secret is ever a parameter.
	for _, p := range f.params {
		if strings.Contains(p.decorators, "@secure") || secretParamName.MatchString(p.name) {
			fail("param %s looks like a secret", p.name)
		}
	}

	// Identity.
	ids := f.byType("Microsoft.ManagedIdentity/userAssignedIdentities")
	if len(ids) != 1 {
		return append(v, "expected one user-assigned identity")
	}
	id := ids[0].symbol

	// The app.
	apps := f.byType("Microsoft.App/containerApps")
	if len(apps) != 1 {
		return append(v, "expected one container app")
	}
	app := apps[0].body
	if identity, _ := prop(app, "identity"); !strings.Contains(identity, "'UserAssigned'") || !strings.Contains(identity, id+".id") {
		fail("app does not run as the user-assigned identity")
	}
	ingress, _ := prop(app, "ingress")
	if !propIs(ingress, "allowInsecure", "false") {
		fail("ingress allows plain HTTP")
	}
	if !propIs(ingress, "targetPort", "8080") {
		fail("ingress does not target port 8080")
	}
	secrets, _ := prop(app, "secrets")
	if !strings.Contains(secrets, "keyVaultUrl:") || !strings.Contains(secrets, "identity: "+id+".id") {
		fail("secrets are not Key Vault references read with the identity")
	}
	if _, ok := prop(secrets, "value"); ok {
		fail("a secret value is in the template")
	}
	if registries, _ := prop(app, "registries"); !strings.Contains(registries, "identity: "+id+".id") {
		fail("image pull does not use the identity")
	}
	probes, _ := prop(app, "probes")
	for typ, path := range map[string]string{"Startup": "/startupz", "Liveness": "/livez", "Readiness": "/readyz"} {
		if !regexp.MustCompile(`type: '` + typ + `'\s+httpGet: \{\s+path: '` + path + `'`).MatchString(probes) {
			fail("missing %s probe on %s", typ, path)
		}
	}
	scale, _ := prop(app, "scale")
	minR, _ := prop(scale, "minReplicas")
	if n, ok := f.intValue(minR); !ok || n < 2 {
		fail("fewer than 2 minimum replicas")
	}
	if rules, _ := prop(scale, "rules"); !strings.Contains(rules, "name:") {
		fail("no scale rules")
	}
	env, _ := prop(app, "env")
	for _, m := range regexp.MustCompile(`name: '([A-Z0-9_]+)'`).FindAllStringSubmatch(env, -1) {
		if slices.Contains(secretConfig, m[1]) {
			fail("secret %s in an environment variable", m[1])
		}
	}
	if !strings.Contains(env, "{ name: 'SECRETS_DIR', value: secretsDir }") {
		fail("SECRETS_DIR not set")
	}
	volumes, _ := prop(app, "volumes")
	if !regexp.MustCompile(`name: 'secrets'\s+storageType: 'Secret'`).MatchString(volumes) {
		fail("secrets are not mounted as files")
	}
	tgps, _ := prop(app, "terminationGracePeriodSeconds")
	if n, _ := strconv.Atoi(tgps); n <= 30 {
		fail("terminationGracePeriodSeconds not longer than drain delay + grace")
	}

	// Logs: the environment ships console and system logs to Log Analytics
	// through diagnostic settings (no workspace shared key).
	envs := f.byType("Microsoft.App/managedEnvironments")
	if len(envs) != 1 || !propIs(envs[0].body, "destination", "'azure-monitor'") {
		fail("app logs do not go through Azure Monitor")
	}
	if strings.Contains(stripBicepComments(src), "listKeys(") {
		fail("the template reads a shared key")
	}
	shipped := false
	for _, d := range f.byType("Microsoft.Insights/diagnosticSettings") {
		if len(envs) == 1 && propIs(d.body, "scope", envs[0].symbol) && propIs(d.body, "workspaceId", "workspace.id") &&
			strings.Contains(d.body, "'ContainerAppConsoleLogs'") && strings.Contains(d.body, "'ContainerAppSystemLogs'") {
			shipped = true
		}
	}
	if !shipped {
		fail("app logs do not reach Log Analytics")
	}

	// Storage account hardening.
	for _, st := range f.byType("Microsoft.Storage/storageAccounts") {
		for key, want := range map[string]string{
			"supportsHttpsTrafficOnly": "true", "minimumTlsVersion": "'TLS1_2'", "allowBlobPublicAccess": "false",
			"allowSharedKeyAccess": "false", "publicNetworkAccess": "'Disabled'",
		} {
			if !propIs(st.body, key, want) {
				fail("storage %s is not %s", key, want)
			}
		}
	}

	// Containers: phi, and the archive under a WORM policy.
	var phi, archive string
	for _, c := range f.byType("Microsoft.Storage/storageAccounts/blobServices/containers") {
		if !propIs(c.body, "publicAccess", "'None'") {
			fail("container %s is public", c.symbol)
		}
		name, _ := prop(c.body, "name")
		switch strings.Trim(f.resolve(name), "'") {
		case "phi":
			phi = c.symbol
		case "audit-archive":
			archive = c.symbol
		}
	}
	if phi == "" || archive == "" {
		fail("missing the phi or audit-archive container")
	}
	worm := false
	for _, p := range f.byType("Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies") {
		if !propIs(p.body, "parent", archive) {
			continue
		}
		days, _ := prop(p.body, "immutabilityPeriodSinceCreationInDays")
		if n, ok := f.intValue(days); !ok || n < 2192 {
			fail("archive retention under 2192 days")
		}
		if !propIs(p.body, "allowProtectedAppendWrites", "true") {
			fail("archive does not allow protected append writes")
		}
		worm = true
	}
	if !worm {
		fail("archive container has no immutability policy")
	}

	// Role assignments: which role on which scope.
	roleVars := f.vars["roles"]
	for key, guid := range builtinRoles {
		if !strings.Contains(roleVars, key+": '"+guid+"'") {
			fail("role %s does not have the built-in ID %s", key, guid)
		}
	}
	grants := map[string]string{}
	for _, ra := range f.byType("Microsoft.Authorization/roleAssignments") {
		scope, ok := prop(ra.body, "scope")
		if !ok {
			fail("role assignment %s at resource group scope", ra.symbol)
		}
		role, _ := prop(ra.body, "roleDefinitionId")
		if !strings.Contains(ra.body, "principalId: "+id+".properties.principalId") {
			fail("role assignment %s is not for the service identity", ra.symbol)
		}
		if m := regexp.MustCompile(`roles\.(\w+)\)$`).FindStringSubmatch(role); m != nil {
			grants[m[1]] = scope
		} else if sym, ok := strings.CutSuffix(role, ".id"); ok {
			grants[sym] = scope
		}
	}
	for role, scope := range map[string]string{
		"keyVaultSecretsUser": "keyVault", "keyVaultCryptoUser": "kek", "storageBlobDataContributor": phi,
		"monitoringMetricsPublisher": "dcr", "acrPull": "acr", "logAnalyticsReader": "workspace",
	} {
		if grants[role] != scope {
			fail("role %s is not granted on %s", role, scope)
		}
	}
	// The archive gets a custom append-only role, nothing that can delete.
	appenderOnArchive := false
	for sym, scope := range grants {
		if scope != archive {
			continue
		}
		def, ok := f.bySymbol(sym)
		if !ok || def.typ != "Microsoft.Authorization/roleDefinitions" {
			fail("archive grant %s is not the custom append-only role", sym)
			continue
		}
		data, _ := prop(def.body, "dataActions")
		if strings.Contains(data, "delete") || strings.Contains(data, "*") || strings.Contains(data, "immutabilityPolicies") {
			fail("archive role can delete or change the policy")
		}
		if !strings.Contains(data, "blobs/add/action") {
			fail("archive role cannot append")
		}
		appenderOnArchive = true
	}
	if !appenderOnArchive {
		fail("no append-only grant on the archive")
	}

	// Alerts.
	var alerts []string
	for _, a := range f.byType("Microsoft.Insights/scheduledQueryRules") {
		name, _ := prop(a.body, "displayName")
		alerts = append(alerts, strings.ToLower(name))
		if actions, _ := prop(a.body, "actionGroups"); !strings.Contains(actions, ".id") {
			fail("alert %s notifies nobody", a.symbol)
		}
		if !propIs(a.body, "enabled", "true") {
			fail("alert %s disabled", a.symbol)
		}
	}
	for _, want := range []string{"readiness", "audit delivery", "denied"} {
		if !slices.ContainsFunc(alerts, func(a string) bool { return strings.Contains(a, want) }) {
			fail("no %s alert", want)
		}
	}
	return v
}

// resolve maps a variable name to its literal value; anything else is
// returned unchanged.
func (f *bicepFile) resolve(expr string) string {
	if v, ok := f.vars[expr]; ok {
		return strings.TrimSpace(v)
	}
	return expr
}

// secretParamName matches parameter names that would carry a secret value.
var secretParamName = regexp.MustCompile(`(?i)password|passwd|secret|token|connectionstring|sharedkey|accountkey|sastoken|apikey|privatekey|credential`)

func TestBicepTemplate(t *testing.T) {
	t.Parallel()
	src := string(readRepoFile(t, bicepPath))
	assert.Empty(t, checkBicep(src))

	f, err := parseBicep(src)
	require.NoError(t, err)
	// Resource types the operator guide describes, each with a pinned,
	// non-preview API version.
	for _, r := range f.resources {
		if r.typ == "Microsoft.Insights/diagnosticSettings" {
			// The current diagnostic settings API is only published as
			// 2021-05-01-preview.
			continue
		}
		assert.Regexp(t, `^\d{4}-\d{2}-\d{2}$`, r.apiVersion, "%s uses a preview API", r.symbol)
	}
	p, ok := f.params["auditRetentionDays"]
	require.True(t, ok)
	assert.Contains(t, p.decorators, "@minValue(2192)")
}

func TestBicepParamFile(t *testing.T) {
	t.Parallel()
	tmpl, err := parseBicep(string(readRepoFile(t, bicepPath)))
	require.NoError(t, err)
	src := stripBicepComments(string(readRepoFile(t, "deploy/containerapps/main.bicepparam")))
	assert.Contains(t, src, "using './main.bicep'")
	set := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^param\s+(\w+)\s*=`).FindAllStringSubmatch(src, -1) {
		set[m[1]] = true
		assert.Contains(t, tmpl.params, m[1], "the parameter file sets an unknown parameter")
	}
	for name, p := range tmpl.params {
		if p.def == "" {
			assert.True(t, set[name], "required parameter %s missing from main.bicepparam", name)
		}
	}
}

func TestBicepCheckerRejectsMutations(t *testing.T) {
	t.Parallel()
	good := string(readRepoFile(t, bicepPath))
	cases := []struct{ name, old, replacement, want string }{
		{"plain HTTP allowed", "allowInsecure: false", "allowInsecure: true", "plain HTTP"},
		{"one replica", "@minValue(2)\nparam minReplicas int = 2", "param minReplicas int = 1", "minimum replicas"},
		{"no readiness probe", "type: 'Readiness'", "type: 'Other'", "Readiness probe"},
		{"secret value inline", "keyVaultUrl: '${keyVault.properties.vaultUri}secrets/${s.secret}'", "value: 'hunter2'", "secret value"},
		{"secret in env", "{ name: 'GOMEMLIMIT', value: '900MiB' }", "{ name: 'PHI_TOKEN_KEY', secretRef: 'phi-token-key' }", "secret PHI_TOKEN_KEY"},
		{"secure param", "param alertEmail string", "@secure()\nparam alertEmail string", "looks like a secret"},
		{"secret param", "param alertEmail string", "param storageAccountKey string", "looks like a secret"},
		{"short retention", "@minValue(2192)\nparam auditRetentionDays int = 2192", "param auditRetentionDays int = 365", "retention under 2192"},
		{"no append writes", "allowProtectedAppendWrites: true", "allowProtectedAppendWrites: false", "protected append"},
		{"no WORM", "parent: archiveContainer\n  name: 'default'\n  properties: {\n    immutabilityPeriodSinceCreationInDays", "parent: phiContainer\n  name: 'default'\n  properties: {\n    immutabilityPeriodSinceCreationInDays", "no immutability policy"},
		{"archive deletable", "'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'", "'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'\n          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'", "can delete"},
		{"shared keys", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true", "allowSharedKeyAccess"},
		{"public blobs", "allowBlobPublicAccess: false", "allowBlobPublicAccess: true", "allowBlobPublicAccess"},
		{"crypto user on the vault", "scope: kek", "scope: keyVault", "keyVaultCryptoUser"},
		{"no alert on denied", "displayName: 'phiguard: spike of denied accesses'", "displayName: 'phiguard: spike'", "no denied alert"},
		{"logs elsewhere", "destination: 'azure-monitor'", "destination: 'none'", "Azure Monitor"},
		{"no diagnostic settings", "category: 'ContainerAppConsoleLogs'", "category: 'Other'", "reach Log Analytics"},
		{"shared key", "destination: 'azure-monitor'", "destination: 'log-analytics'\n      logAnalyticsConfiguration: {\n        customerId: workspace.properties.customerId\n        sharedKey: workspace.listKeys().primarySharedKey\n      }", "shared key"},
		{"short grace", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 20", "terminationGracePeriodSeconds"},
		{"comment does not count", "allowInsecure: false", "// allowInsecure: false\n        allowInsecure: true", "plain HTTP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Contains(t, good, tc.old, "test case does not apply")
			assertViolation(t, checkBicep(strings.Replace(good, tc.old, tc.replacement, 1)), tc.want)
		})
	}
}

// TestBicepAuditColumns checks that the audit table and the DCR stream have
// the columns auditlog's Logs Ingestion sink sends, as docs/auditlog.md
// lists them.
func TestBicepAuditColumns(t *testing.T) {
	t.Parallel()
	f, err := parseBicep(string(readRepoFile(t, bicepPath)))
	require.NoError(t, err)
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`\{ name: '(\w+)', type: '(\w+)' \}`).FindAllStringSubmatch(f.vars["auditColumns"], -1) {
		got[m[1]] = m[2]
	}
	want := map[string]string{}
	row := regexp.MustCompile(`^\|\s*(\w+)\s*\|\s*(\w+)[^|]*\|\s*\|\s*(?:(\w+)\s*\|\s*(\w+)[^|]*)?\|`)
	for _, l := range strings.Split(string(readRepoFile(t, "docs/auditlog.md")), "\n") {
		m := row.FindStringSubmatch(l)
		if m == nil || m[1] == "Column" {
			continue
		}
		want[m[1]] = m[2]
		if m[3] != "" {
			want[m[3]] = m[4]
		}
	}
	require.NotEmpty(t, want, "docs/auditlog.md has no column table")
	assert.Equal(t, want, got)

	table, ok := f.bySymbol("auditTable")
	require.True(t, ok)
	assert.True(t, propIs(table.body, "columns", "auditColumns"))
	dcr, ok := f.bySymbol("dcr")
	require.True(t, ok)
	assert.True(t, propIs(dcr.body, "columns", "auditColumns"))
}
