package deploy_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/joho/godotenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// composeFile mirrors the part of the Compose specification that
// docker-compose.yml uses; strict decoding rejects anything else, so a typo
// (which Compose would ignore or reject at run time) fails here.
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
}

type composeService struct {
	Build *struct {
		Context    string            `json:"context"`
		Dockerfile string            `json:"dockerfile"`
		Args       map[string]string `json:"args"`
	} `json:"build"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	EnvFile []struct {
		Path     string `json:"path"`
		Required bool   `json:"required"`
	} `json:"env_file"`
	Environment map[string]string `json:"environment"`
	Ports       []string          `json:"ports"`
	ReadOnly    bool              `json:"read_only"`
	User        string            `json:"user"`
	CapDrop     []string          `json:"cap_drop"`
	SecurityOpt []string          `json:"security_opt"`
	Tmpfs       []string          `json:"tmpfs"`
	Volumes     []string          `json:"volumes"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	StopGracePeriod string `json:"stop_grace_period"`
	Healthcheck     *struct {
		Test        []string `json:"test"`
		Interval    string   `json:"interval"`
		Timeout     string   `json:"timeout"`
		StartPeriod string   `json:"start_period"`
		Retries     int      `json:"retries"`
	} `json:"healthcheck"`
}

func TestCompose(t *testing.T) {
	t.Parallel()
	var c composeFile
	require.NoError(t, yaml.UnmarshalStrict(readRepoFile(t, "docker-compose.yml"), &c))
	api, ok := c.Services["api"]
	require.True(t, ok)
	require.NotNil(t, api.Build)
	assert.Equal(t, ".", api.Build.Context)
	assert.Equal(t, dockerfilePath, api.Build.Dockerfile)
	assert.Equal(t, "development", api.Environment["APP_ENV"], "local work opts in to development explicitly")
	for k, v := range api.Environment {
		if k == "AZURE_STORAGE_CONNECTION_STRING" {
			// Development only (the service refuses it in production), and
			// only with Azurite's published development account.
			assert.Contains(t, v, "AccountName=devstoreaccount1;")
			assert.Contains(t, v, "BlobEndpoint=http://azurite:10000/")
			continue
		}
		assert.NotContains(t, secretConfig, k, "secrets come from .env, not the compose file")
		assert.Contains(t, nonSecretConfig, k)
	}
	require.Len(t, api.EnvFile, 1)
	assert.Equal(t, "examples/api/.env", api.EnvFile[0].Path)
	assert.True(t, api.ReadOnly)
	assert.Equal(t, "65532:65532", api.User)
	assert.Equal(t, []string{"ALL"}, api.CapDrop)
	assert.Contains(t, api.SecurityOpt, "no-new-privileges:true")
	assert.True(t, slices.ContainsFunc(api.Tmpfs, func(s string) bool { return strings.HasPrefix(s, "/tmp:") }))
	assert.True(t, slices.ContainsFunc(api.Volumes, func(s string) bool { return strings.HasSuffix(s, ":"+api.Environment["DATA_DIR"]) }))
	require.NotNil(t, api.Healthcheck)
	assert.Equal(t, []string{"CMD", "/app/api", "healthcheck"}, api.Healthcheck.Test)
	for name, s := range c.Services {
		for _, p := range s.Ports {
			assert.True(t, strings.HasPrefix(p, "127.0.0.1:"), "%s publishes %s beyond loopback", name, p)
		}
	}

	// Azurite: the release internal/testenv pins.
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	require.NoError(t, json.Unmarshal(readRepoFile(t, "internal/testenv/azurite/package.json"), &pkg))
	az, ok := c.Services["azurite"]
	require.True(t, ok)
	assert.Equal(t, "mcr.microsoft.com/azure-storage/azurite:"+pkg.Dependencies["azurite"], az.Image)
}

var commentedKey = regexp.MustCompile(`(?m)^#\s*([A-Z][A-Z0-9_]*)=`)

func TestEnvExample(t *testing.T) {
	t.Parallel()
	src := readRepoFile(t, "examples/api/.env.example")
	// Parsed by the same loader the service uses for .env.
	active, err := godotenv.Parse(bytes.NewReader(src))
	require.NoError(t, err)
	keys := map[string]bool{}
	for k := range active {
		keys[k] = true
	}
	for _, m := range commentedKey.FindAllSubmatch(src, -1) {
		keys[string(m[1])] = true
	}
	var got []string
	for k := range keys {
		got = append(got, k)
	}
	want := append(slices.Clone(nonSecretConfig), secretConfig...)
	want = append(want, "AZURE_STORAGE_CONNECTION_STRING") // development only, commented out
	assert.ElementsMatch(t, want, got, "every configuration key, and no other")
	for _, k := range secretConfig {
		v, ok := active[k]
		assert.True(t, ok, "%s listed", k)
		assert.True(t, v == "", "%s must be an empty placeholder", k) // names the key, never the value
	}
	assert.Equal(t, "development", active["APP_ENV"])
}
