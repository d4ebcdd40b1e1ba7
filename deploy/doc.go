// Package deploy holds the deployment files of the reference service
// (examples/api) and the tests that keep them honest. It has no API.
//
//   - kubernetes/: AKS manifests (Deployment, Service, ServiceAccount with
//     Azure Workload Identity, SecretProviderClass for Key Vault through the
//     Secrets Store CSI driver, PodDisruptionBudget, HorizontalPodAutoscaler,
//     NetworkPolicy). Tests decode every document strictly into the
//     Kubernetes API types and apply the restricted Pod Security Standard and
//     the service's own rules to the decoded objects.
//   - containerapps/: a Bicep template for Azure Container Apps, with the
//     managed identity, Key Vault references, probes, scale rules, alerts, the
//     PHI container and the immutable audit archive container. Tests check
//     its key settings from the text (no Bicep compiler runs here).
//
// The same tests check examples/api/Dockerfile (with BuildKit's Dockerfile
// parser), .dockerignore (with the matcher Docker uses) and
// docker-compose.yml. docs/operator-guide.md walks through all of them.
package deploy
