package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const k8sDir = "deploy/kubernetes"

// manifestVars are the placeholders the manifests may use; the deploy script
// substitutes exactly these (scripts/deploy-aks.sh --print-variables).
var manifestVars = map[string]string{
	"IMAGE":                            "phiguardacr.azurecr.io/phiguard-api:1.2.3@sha256:" + strings.Repeat("ab", 32),
	"AZURE_CLIENT_ID":                  "11111111-2222-3333-4444-555555555555",
	"AZURE_TENANT_ID":                  "66666666-7777-8888-9999-000000000000",
	"KEYVAULT_NAME":                    "kv-phiguard-test",
	"AZURE_KEYVAULT_URL":               "https://kv-phiguard-test.vault.azure.net",
	"AZURE_KEYVAULT_KEY_NAME":          "phiguard-kek",
	"AZURE_STORAGE_ACCOUNT_URL":        "https://stphiguardtest.blob.core.windows.net",
	"AZURE_LOGS_ENDPOINT":              "https://dce-phiguard.westeurope-1.ingest.monitor.azure.com",
	"AZURE_LOGS_RULE_ID":               "dcr-00000000000000000000000000000000",
	"AZURE_LOG_ANALYTICS_WORKSPACE_ID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
	"OIDC_AUDIENCE":                    "ffffffff-1111-2222-3333-444444444444",
	"INGRESS_NAMESPACE":                "app-routing-system",
	"PRIVATE_ENDPOINT_CIDR":            "10.20.8.0/24",
}

// nonSecretConfig and secretConfig are the service's configuration table
// (examples/api), split by the table's "secret" column.
var (
	nonSecretConfig = []string{
		"APP_ENV", "ADDR", "DATA_DIR", "MODEL_PATH", "SECRETS_DIR", "AZURE_KEYVAULT_URL",
		"AZURE_STORAGE_ACCOUNT_URL", "AZURE_STORAGE_CONTAINER", "AZURE_AUDIT_ARCHIVE_CONTAINER", "AZURE_KEYVAULT_KEY_NAME",
		"AZURE_LOGS_ENDPOINT", "AZURE_LOGS_RULE_ID", "AZURE_LOGS_STREAM",
		"AZURE_LOG_ANALYTICS_WORKSPACE_ID", "AZURE_CLIENT_ID", "AZURE_TOKEN_CREDENTIALS",
		"OIDC_ISSUER", "OIDC_AUDIENCE", "SHUTDOWN_DRAIN_DELAY", "SHUTDOWN_GRACE",
	}
	secretConfig = []string{"PHI_TOKEN_KEY", "AUDIT_SIGNING_KEY", "STORAGE_KEK", "HEALTH_TOKEN"}
)

var placeholder = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// renderManifest substitutes ${VAR} placeholders as the deploy script's
// envsubst does, and fails on a name outside manifestVars.
func renderManifest(src []byte) ([]byte, error) {
	var unknown []string
	out := placeholder.ReplaceAllFunc(src, func(m []byte) []byte {
		name := string(placeholder.FindSubmatch(m)[1])
		v, ok := manifestVars[name]
		if !ok {
			unknown = append(unknown, name)
			return m
		}
		return []byte(v)
	})
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown placeholders %v", unknown)
	}
	return out, nil
}

// secretProviderClass mirrors the schema of the Secrets Store CSI driver's
// CRD (secrets-store.csi.x-k8s.io/v1), which has no Go types in k8s.io/api;
// strict decoding into it rejects any field the CRD does not define.
type secretProviderClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Provider      string            `json:"provider"`
		Parameters    map[string]string `json:"parameters"`
		SecretObjects []struct {
			SecretName  string            `json:"secretName"`
			Type        string            `json:"type"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
			Data        []struct {
				ObjectName string `json:"objectName"`
				Key        string `json:"key"`
			} `json:"data"`
		} `json:"secretObjects,omitempty"`
	} `json:"spec"`
}

// azureKeyVaultObjects is the provider's "objects" parameter.
type azureKeyVaultObjects struct {
	Array []string `json:"array"`
}

type azureKeyVaultObject struct {
	ObjectName     string `json:"objectName"`
	ObjectType     string `json:"objectType"`
	ObjectAlias    string `json:"objectAlias,omitempty"`
	ObjectVersion  string `json:"objectVersion,omitempty"`
	ObjectEncoding string `json:"objectEncoding,omitempty"`
	ObjectFormat   string `json:"objectFormat,omitempty"`
}

// manifests is every object of deploy/kubernetes, decoded strictly.
type manifests struct {
	namespaces      []*corev1.Namespace
	serviceAccounts []*corev1.ServiceAccount
	configMaps      []*corev1.ConfigMap
	services        []*corev1.Service
	deployments     []*appsv1.Deployment
	pdbs            []*policyv1.PodDisruptionBudget
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	netpols         []*networkingv1.NetworkPolicy
	spcs            []*secretProviderClass
}

// decodeStrict decodes one YAML document into its typed object. Unknown or
// duplicate fields, wrong types and unknown kinds are errors.
func (m *manifests) decodeStrict(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	var obj any
	switch gvk {
	case "v1/Namespace":
		obj = appendNew(&m.namespaces)
	case "v1/ServiceAccount":
		obj = appendNew(&m.serviceAccounts)
	case "v1/ConfigMap":
		obj = appendNew(&m.configMaps)
	case "v1/Service":
		obj = appendNew(&m.services)
	case "apps/v1/Deployment":
		obj = appendNew(&m.deployments)
	case "policy/v1/PodDisruptionBudget":
		obj = appendNew(&m.pdbs)
	case "autoscaling/v2/HorizontalPodAutoscaler":
		obj = appendNew(&m.hpas)
	case "networking.k8s.io/v1/NetworkPolicy":
		obj = appendNew(&m.netpols)
	case "secrets-store.csi.x-k8s.io/v1/SecretProviderClass":
		obj = appendNew(&m.spcs)
	default:
		return fmt.Errorf("unexpected kind %q", gvk)
	}
	return yaml.UnmarshalStrict(doc, obj)
}

// appendNew appends a new, empty object to list and returns it to decode into.
func appendNew[T any](list *[]*T) *T {
	o := new(T)
	*list = append(*list, o)
	return o
}

func splitYAMLDocuments(src []byte) ([][]byte, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(src)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, k8sDir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	m := &manifests{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		rendered, err := renderManifest(src)
		require.NoError(t, err, filepath.Base(f))
		docs, err := splitYAMLDocuments(rendered)
		require.NoError(t, err, filepath.Base(f))
		for i, doc := range docs {
			require.NoError(t, m.decodeStrict(doc), "%s document %d", filepath.Base(f), i)
		}
	}
	return m
}

// --- policy functions: each returns the violations it finds --------------

// restrictedPodViolations applies the restricted Pod Security Standard
// (https://kubernetes.io/docs/concepts/security/pod-security-standards/)
// plus the service's own rules (read-only root file system, numeric user).
func restrictedPodViolations(spec *corev1.PodSpec) []string {
	var v []string
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		v = append(v, "host namespaces")
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		v = append(v, "pod runAsUser 0")
	}
	podSeccomp := psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	for _, vol := range spec.Volumes {
		if vol.HostPath != nil {
			v = append(v, "hostPath volume "+vol.Name)
		}
	}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range all {
		sc := c.SecurityContext
		if sc == nil {
			v = append(v, c.Name+": no securityContext")
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			v = append(v, c.Name+": privileged")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			v = append(v, c.Name+": allowPrivilegeEscalation not false")
		}
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			v = append(v, c.Name+": runAsNonRoot not true")
		}
		uid := psc.RunAsUser
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if uid == nil || *uid == 0 {
			v = append(v, c.Name+": no numeric non-root runAsUser")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			v = append(v, c.Name+": root file system writable")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			v = append(v, c.Name+": capabilities not dropped (ALL)")
		}
		if sc.Capabilities != nil {
			for _, a := range sc.Capabilities.Add {
				if a != "NET_BIND_SERVICE" {
					v = append(v, c.Name+": adds capability "+string(a))
				}
			}
		}
		seccomp := podSeccomp
		if sc.SeccompProfile != nil {
			seccomp = sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault || sc.SeccompProfile.Type == corev1.SeccompProfileTypeLocalhost
		}
		if !seccomp {
			v = append(v, c.Name+": seccomp not RuntimeDefault")
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				v = append(v, c.Name+": hostPort")
			}
		}
	}
	return v
}

func envOf(c *corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

func mountAt(c *corev1.Container, path string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].MountPath == path {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func volumeNamed(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// deploymentViolations checks the service's rules for its Deployment.
func deploymentViolations(d *appsv1.Deployment) []string {
	var v []string
	spec := &d.Spec.Template.Spec
	v = append(v, restrictedPodViolations(spec)...)
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 3 {
		v = append(v, "fewer than 3 replicas")
	}
	zones, hosts := false, false
	for _, tsc := range spec.TopologySpreadConstraints {
		if tsc.LabelSelector == nil || tsc.MaxSkew != 1 {
			continue
		}
		zones = zones || tsc.TopologyKey == "topology.kubernetes.io/zone"
		hosts = hosts || tsc.TopologyKey == "kubernetes.io/hostname"
	}
	if !zones || !hosts {
		v = append(v, "no topology spread over zones and nodes")
	}
	if len(spec.Containers) != 1 {
		return append(v, "expected one container")
	}
	c := &spec.Containers[0]
	probes := map[string]*corev1.Probe{"/startupz": c.StartupProbe, "/livez": c.LivenessProbe, "/readyz": c.ReadinessProbe}
	for path, p := range probes {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			v = append(v, "missing probe "+path)
		}
	}
	if sp := c.StartupProbe; sp != nil {
		// The start budget must cover the service's start (Key Vault, model
		// checksum, storage and audit checks): at least 30s.
		if sp.PeriodSeconds*sp.FailureThreshold < 30 {
			v = append(v, "startup probe budget under 30s")
		}
	}
	if lp := c.LivenessProbe; lp != nil && lp.FailureThreshold < 3 {
		v = append(v, "liveness probe restarts on a single failure")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			v = append(v, "no request for "+string(r))
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		v = append(v, "no memory limit")
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; !ok {
		v = append(v, "no cpu limit")
	}
	// Writable scratch only as emptyDir at /tmp and DATA_DIR.
	dataDir, _ := envOf(c, "DATA_DIR")
	for _, path := range []string{"/tmp", dataDir} {
		vm := mountAt(c, path)
		if vm == nil {
			v = append(v, "no volume at "+path)
			continue
		}
		if vol := volumeNamed(spec, vm.Name); vol == nil || vol.EmptyDir == nil || vol.EmptyDir.SizeLimit == nil {
			v = append(v, "volume at "+path+" is not a size-limited emptyDir")
		}
	}
	// Secrets: the CSI volume read-only at SECRETS_DIR, never env values.
	secretsDir, _ := envOf(c, "SECRETS_DIR")
	vm := mountAt(c, secretsDir)
	if secretsDir == "" || vm == nil || !vm.ReadOnly {
		v = append(v, "no read-only secrets mount at SECRETS_DIR")
	} else if vol := volumeNamed(spec, vm.Name); vol == nil || vol.CSI == nil || vol.CSI.Driver != "secrets-store.csi.k8s.io" {
		v = append(v, "SECRETS_DIR is not a Secrets Store CSI volume")
	}
	for _, e := range c.Env {
		if slices.Contains(secretConfig, e.Name) || secretLikeName(e.Name) {
			v = append(v, "secret-like env "+e.Name)
		}
	}
	// Shutdown: the grace period outlasts drain delay + grace.
	drain, err1 := time.ParseDuration(firstNonEmpty(mustEnv(c, "SHUTDOWN_DRAIN_DELAY"), "5s"))
	grace, err2 := time.ParseDuration(firstNonEmpty(mustEnv(c, "SHUTDOWN_GRACE"), "20s"))
	if err1 != nil || err2 != nil {
		v = append(v, "shutdown durations do not parse")
	} else if tgps := spec.TerminationGracePeriodSeconds; tgps == nil || time.Duration(*tgps)*time.Second <= drain+grace {
		v = append(v, "terminationGracePeriodSeconds not longer than drain delay + grace")
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		v = append(v, "Kubernetes API token mounted")
	}
	if d.Spec.Template.Labels["azure.workload.identity/use"] != "true" {
		v = append(v, "pod not labelled for workload identity")
	}
	return v
}

func mustEnv(c *corev1.Container, name string) string { s, _ := envOf(c, name); return s }

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// networkPolicyViolations checks default deny, ingress from the ingress
// controller's namespace only, and egress limited to DNS and 443.
func networkPolicyViolations(pols []*networkingv1.NetworkPolicy, podLabels map[string]string, ingressNS string) []string {
	var v []string
	selects := func(p *networkingv1.NetworkPolicy) bool {
		for k, want := range p.Spec.PodSelector.MatchLabels {
			if podLabels[k] != want {
				return false
			}
		}
		return len(p.Spec.PodSelector.MatchExpressions) == 0
	}
	denyIn, denyOut := false, false
	for _, p := range pols {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 {
			denyIn = denyIn || slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
			denyOut = denyOut || slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	if !denyIn || !denyOut {
		v = append(v, "no default deny for ingress and egress")
	}
	for _, p := range pols {
		if !selects(p) {
			continue
		}
		for _, rule := range p.Spec.Ingress {
			if len(rule.From) == 0 {
				v = append(v, p.Name+": ingress from anywhere")
			}
			for _, peer := range rule.From {
				if peer.IPBlock != nil || peer.NamespaceSelector == nil ||
					peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != ingressNS {
					v = append(v, p.Name+": ingress from outside the ingress controller namespace")
				}
			}
			if len(rule.Ports) == 0 {
				v = append(v, p.Name+": ingress on every port")
			}
		}
		for _, rule := range p.Spec.Egress {
			if len(rule.Ports) == 0 {
				v = append(v, p.Name+": egress on every port")
			}
			dns := true
			for _, port := range rule.Ports {
				if port.Port == nil || port.Port.IntValue() != 53 {
					dns = false
				}
			}
			for _, port := range rule.Ports {
				if port.Port == nil || (port.Port.IntValue() != 443 && port.Port.IntValue() != 53) {
					v = append(v, p.Name+": egress on a port other than 53 and 443")
				}
			}
			if len(rule.To) == 0 {
				v = append(v, p.Name+": egress to anywhere")
			}
			for _, peer := range rule.To {
				if dns && (peer.NamespaceSelector == nil || peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kube-system") {
					v = append(v, p.Name+": DNS egress outside kube-system")
				}
				if peer.IPBlock != nil && peer.IPBlock.CIDR == "0.0.0.0/0" {
					for _, must := range []string{"169.254.0.0/16", "10.0.0.0/8"} {
						if !slices.Contains(peer.IPBlock.Except, must) {
							v = append(v, p.Name+": public egress does not exclude "+must)
						}
					}
				}
			}
		}
	}
	return v
}

// --- tests on the real manifests ------------------------------------------

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	assert.Len(t, m.namespaces, 1)
	assert.Len(t, m.serviceAccounts, 1)
	assert.Len(t, m.configMaps, 1)
	assert.Len(t, m.services, 1)
	assert.Len(t, m.deployments, 1)
	assert.Len(t, m.pdbs, 1)
	assert.Len(t, m.hpas, 1)
	assert.Len(t, m.spcs, 1)
	assert.Len(t, m.netpols, 3)
}

func TestKubernetesStrictDecodingRejectsTypos(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"unknown field":   "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  typo: 1\n",
		"wrong type":      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: three\n",
		"duplicate field": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"unknown kind":    "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n",
		"SPC unknown":     "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: x}\nspec:\n  provider: azure\n  secretObject: []\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Error(t, (&manifests{}).decodeStrict([]byte(doc)))
		})
	}
}

func TestKubernetesDeploymentPolicy(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	require.Len(t, m.deployments, 1)
	d := m.deployments[0]
	assert.Empty(t, deploymentViolations(d))

	c := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, manifestVars["IMAGE"], c.Image, "image comes from the deploy script, by digest")
	assert.Equal(t, int32(8080), c.Ports[0].ContainerPort)
	for name, want := range map[string]string{
		"ADDR": "0.0.0.0:8080", "DATA_DIR": "/var/lib/phiguard",
		"MODEL_PATH": "/app/model/readmission.json", "SECRETS_DIR": "/mnt/secrets-store",
	} {
		got, _ := envOf(&c, name)
		assert.Equal(t, want, got, name)
	}
	// GOMEMLIMIT stays under the container's memory limit.
	limit := c.Resources.Limits[corev1.ResourceMemory]
	soft, _ := envOf(&c, "GOMEMLIMIT")
	require.True(t, strings.HasSuffix(soft, "MiB"))
	var mib int64
	_, err := fmt.Sscanf(strings.TrimSuffix(soft, "MiB"), "%d", &mib)
	require.NoError(t, err)
	assert.Less(t, mib<<20, limit.Value())

	// The pod uses the workload identity ServiceAccount and the CSI class.
	require.Len(t, m.serviceAccounts, 1)
	sa := m.serviceAccounts[0]
	assert.Equal(t, sa.Name, d.Spec.Template.Spec.ServiceAccountName)
	assert.Equal(t, manifestVars["AZURE_CLIENT_ID"], sa.Annotations["azure.workload.identity/client-id"])
	assert.Equal(t, "true", sa.Labels["azure.workload.identity/use"])
	require.NotNil(t, sa.AutomountServiceAccountToken)
	assert.False(t, *sa.AutomountServiceAccountToken)

	secrets := volumeNamed(&d.Spec.Template.Spec, mountAt(&c, "/mnt/secrets-store").Name)
	require.Len(t, m.spcs, 1)
	assert.Equal(t, m.spcs[0].Name, secrets.CSI.VolumeAttributes["secretProviderClass"])

	// The selector matches the pod template, the Service, PDB and HPA target it.
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(labelSet(d.Spec.Template.Labels)))
	require.Len(t, m.services, 1)
	svc := m.services[0]
	assert.Equal(t, corev1.ServiceTypeClusterIP, svc.Spec.Type)
	for k, want := range svc.Spec.Selector {
		assert.Equal(t, want, d.Spec.Template.Labels[k])
	}
	assert.Equal(t, intstr.FromString("http"), svc.Spec.Ports[0].TargetPort)

	// Every namespaced object lives in the namespace the PSS labels guard.
	require.Len(t, m.namespaces, 1)
	ns := m.namespaces[0]
	assert.Equal(t, "restricted", ns.Labels["pod-security.kubernetes.io/enforce"])
	for _, o := range m.objects() {
		assert.Equal(t, ns.Name, o.GetNamespace(), "%s is outside the namespace", o.GetName())
	}
}

func (m *manifests) objects() []metav1.Object {
	var out []metav1.Object
	for _, o := range m.serviceAccounts {
		out = append(out, o)
	}
	for _, o := range m.configMaps {
		out = append(out, o)
	}
	for _, o := range m.services {
		out = append(out, o)
	}
	for _, o := range m.deployments {
		out = append(out, o)
	}
	for _, o := range m.pdbs {
		out = append(out, o)
	}
	for _, o := range m.hpas {
		out = append(out, o)
	}
	for _, o := range m.netpols {
		out = append(out, o)
	}
	for _, o := range m.spcs {
		out = append(out, &o.ObjectMeta)
	}
	return out
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }

func TestKubernetesAvailabilityAndScaling(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	d := m.deployments[0]

	require.Len(t, m.pdbs, 1)
	pdb := m.pdbs[0]
	pdbSel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	require.NoError(t, err)
	assert.True(t, pdbSel.Matches(labelSet(d.Spec.Template.Labels)))
	require.NotNil(t, pdb.Spec.MaxUnavailable)
	assert.Equal(t, 1, pdb.Spec.MaxUnavailable.IntValue())
	assert.Nil(t, pdb.Spec.MinAvailable)

	require.Len(t, m.hpas, 1)
	hpa := m.hpas[0]
	assert.Equal(t, "Deployment", hpa.Spec.ScaleTargetRef.Kind)
	assert.Equal(t, d.Name, hpa.Spec.ScaleTargetRef.Name)
	require.NotNil(t, hpa.Spec.MinReplicas)
	assert.GreaterOrEqual(t, *hpa.Spec.MinReplicas, *d.Spec.Replicas)
	assert.Greater(t, hpa.Spec.MaxReplicas, *hpa.Spec.MinReplicas)
	assert.NotEmpty(t, hpa.Spec.Metrics)
	require.NotNil(t, hpa.Spec.Behavior)
	require.NotNil(t, hpa.Spec.Behavior.ScaleDown)
	require.NotNil(t, hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds)
	assert.GreaterOrEqual(t, *hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds, int32(300))

	// Rollouts never drop below the desired count.
	require.NotNil(t, d.Spec.Strategy.RollingUpdate)
	assert.Equal(t, 0, d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue())
}

func TestKubernetesNetworkPolicy(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	assert.Empty(t, networkPolicyViolations(m.netpols, m.deployments[0].Spec.Template.Labels, manifestVars["INGRESS_NAMESPACE"]))
}

func TestKubernetesSecretProviderClass(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	require.Len(t, m.spcs, 1)
	spc := m.spcs[0]
	assert.Equal(t, "azure", spc.Spec.Provider)
	p := spc.Spec.Parameters
	assert.Equal(t, "false", p["usePodIdentity"])
	assert.Equal(t, manifestVars["AZURE_CLIENT_ID"], p["clientID"], "workload identity client")
	assert.Equal(t, manifestVars["KEYVAULT_NAME"], p["keyvaultName"])
	assert.Equal(t, manifestVars["AZURE_TENANT_ID"], p["tenantId"])
	assert.Empty(t, spc.Spec.SecretObjects, "secrets must not be synced into Kubernetes Secrets")

	var objs azureKeyVaultObjects
	require.NoError(t, yaml.UnmarshalStrict([]byte(p["objects"]), &objs))
	var aliases []string
	for _, raw := range objs.Array {
		var o azureKeyVaultObject
		require.NoError(t, yaml.UnmarshalStrict([]byte(raw), &o))
		assert.Equal(t, "secret", o.ObjectType)
		assert.Regexp(t, `^[0-9a-zA-Z-]{1,127}$`, o.ObjectName, "Key Vault secret names allow only letters, digits and '-'")
		aliases = append(aliases, o.ObjectAlias)
	}
	// The secrets of the configuration table; STORAGE_KEK stays out because
	// production wraps content keys with the Key Vault key.
	assert.ElementsMatch(t, []string{"PHI_TOKEN_KEY", "AUDIT_SIGNING_KEY", "HEALTH_TOKEN"}, aliases)

	// Only the non-secret names of the configuration table reach the ConfigMap.
	for k := range m.configMaps[0].Data {
		assert.Contains(t, nonSecretConfig, k)
	}
	assert.Equal(t, "production", m.configMaps[0].Data["APP_ENV"])
	assert.Equal(t, "prod", m.configMaps[0].Data["AZURE_TOKEN_CREDENTIALS"])
}

// --- negative tests: mutated manifests fail the policies ------------------

func TestKubernetesPolicyRejectsMutations(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(d *appsv1.Deployment)
		want   string
	}{
		{"privileged", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].SecurityContext.Privileged = ptr(true) }, "privileged"},
		{"privilege escalation", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
		}, "allowPrivilegeEscalation"},
		{"root user", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.RunAsUser = ptr(int64(0))
		}, "runAsUser"},
		{"run as root allowed", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.RunAsNonRoot = ptr(false)
		}, "runAsNonRoot"},
		{"writable root", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr(false)
		}, "root file system writable"},
		{"capabilities kept", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Drop = nil
		}, "capabilities not dropped"},
		{"capability added", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		}, "adds capability"},
		{"unconfined seccomp", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}, "seccomp"},
		{"host network", func(d *appsv1.Deployment) { d.Spec.Template.Spec.HostNetwork = true }, "host namespaces"},
		{"hostPath", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Volumes = append(d.Spec.Template.Spec.Volumes, corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		}, "hostPath"},
		{"missing readiness probe", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].ReadinessProbe = nil }, "missing probe /readyz"},
		{"missing startup probe", func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].StartupProbe = nil }, "missing probe /startupz"},
		{"liveness on the wrong path", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path = "/readyz"
		}, "missing probe /livez"},
		{"short start budget", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].StartupProbe.FailureThreshold = 3
		}, "startup probe budget"},
		{"two replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(2)) }, "fewer than 3 replicas"},
		{"no spread", func(d *appsv1.Deployment) { d.Spec.Template.Spec.TopologySpreadConstraints = nil }, "topology spread"},
		{"no memory limit", func(d *appsv1.Deployment) {
			delete(d.Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
		}, "no memory limit"},
		{"no cpu request", func(d *appsv1.Deployment) {
			delete(d.Spec.Template.Spec.Containers[0].Resources.Requests, corev1.ResourceCPU)
		}, "no request for cpu"},
		{"data dir on the image", func(d *appsv1.Deployment) {
			c := &d.Spec.Template.Spec.Containers[0]
			c.VolumeMounts = slices.DeleteFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/var/lib/phiguard" })
		}, "no volume at /var/lib/phiguard"},
		{"unbounded scratch", func(d *appsv1.Deployment) { volumeNamed(&d.Spec.Template.Spec, "tmp").EmptyDir.SizeLimit = nil }, "size-limited emptyDir"},
		{"secrets mount writable", func(d *appsv1.Deployment) {
			mountAt(&d.Spec.Template.Spec.Containers[0], "/mnt/secrets-store").ReadOnly = false
		}, "secrets mount"},
		{"secret in env", func(d *appsv1.Deployment) {
			c := &d.Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "PHI_TOKEN_KEY", Value: "x"})
		}, "secret-like env PHI_TOKEN_KEY"},
		{"grace shorter than drain", func(d *appsv1.Deployment) { d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr(int64(30)) }, "terminationGracePeriodSeconds"},
		{"API token mounted", func(d *appsv1.Deployment) { d.Spec.Template.Spec.AutomountServiceAccountToken = nil }, "API token"},
		{"no workload identity label", func(d *appsv1.Deployment) { delete(d.Spec.Template.Labels, "azure.workload.identity/use") }, "workload identity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := loadManifests(t).deployments[0]
			tc.mutate(d)
			assertViolation(t, deploymentViolations(d), tc.want)
		})
	}
}

func TestNetworkPolicyRejectsMutations(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		mutate func(pols []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy
		want   string
	}{
		{"no default deny", func(p []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
			return slices.DeleteFunc(p, func(n *networkingv1.NetworkPolicy) bool { return n.Name == "default-deny-all" })
		}, "default deny"},
		{"ingress from anywhere", func(p []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
			byName(p, "phiguard-api-ingress").Spec.Ingress[0].From = nil
			return p
		}, "ingress from anywhere"},
		{"ingress from another namespace", func(p []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
			byName(p, "phiguard-api-ingress").Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] = "default"
			return p
		}, "outside the ingress controller namespace"},
		{"egress on every port", func(p []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
			e := byName(p, "phiguard-api-egress")
			e.Spec.Egress[len(e.Spec.Egress)-1].Ports = nil
			return p
		}, "egress on every port"},
		{"egress to ssh", func(p []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
			e := byName(p, "phiguard-api-egress")
			port := intstr.FromInt32(22)
			e.Spec.Egress[len(e.Spec.Egress)-1].Ports[0].Port = &port
			return p
		}, "other than 53 and 443"},
		{"metadata service reachable", func(p []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
			e := byName(p, "phiguard-api-egress")
			blk := e.Spec.Egress[len(e.Spec.Egress)-1].To[0].IPBlock
			blk.Except = slices.DeleteFunc(blk.Except, func(s string) bool { return s == "169.254.0.0/16" })
			return p
		}, "169.254.0.0/16"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := loadManifests(t)
			pols := tc.mutate(m.netpols)
			assertViolation(t, networkPolicyViolations(pols, m.deployments[0].Spec.Template.Labels, manifestVars["INGRESS_NAMESPACE"]), tc.want)
		})
	}
}

func byName(pols []*networkingv1.NetworkPolicy, name string) *networkingv1.NetworkPolicy {
	for _, p := range pols {
		if p.Name == name {
			return p
		}
	}
	panic("no network policy " + name)
}

func assertViolation(t *testing.T, violations []string, want string) {
	t.Helper()
	for _, v := range violations {
		if strings.Contains(v, want) {
			return
		}
	}
	t.Errorf("the policy accepted the mutation: want a violation containing %q, got %q", want, violations)
}

func ptr[T any](v T) *T { return &v }
