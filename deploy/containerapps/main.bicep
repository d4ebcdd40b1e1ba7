// phiguard reference service (examples/api) on Azure Container Apps.
//
// Deploys into one resource group:
//   - a user-assigned managed identity: the service's only identity (no
//     client secret anywhere), with least-privilege role assignments;
//   - Log Analytics, a data collection endpoint and rule for the audit trail
//     (Logs Ingestion API), and alert rules;
//   - a storage account (HTTPS only, TLS 1.2, no shared keys, no public blob
//     access, private endpoint) with the PHI container and the audit archive
//     container under a time-based retention (WORM) policy of >= 2192 days
//     (six years) that allows protected appends only;
//   - the Container Apps environment (VNet-integrated, zone-redundant) and the
//     app: HTTPS-only ingress, Key Vault secret references mounted as files,
//     probes, 2+ replicas and scale rules.
//
// Not created here (the operator guide creates them first): the Key Vault
// with its secrets and key, the container registry, the VNet with its
// subnets and private DNS zones.
//
//   az deployment group create -g rg-phiguard -f deploy/containerapps/main.bicep \
//     -p deploy/containerapps/main.bicepparam
//
// After the first deployment, LOCK the archive's retention policy (ARM can
// create it but locking is a separate action): scripts/lock-audit-archive.sh.

targetScope = 'resourceGroup'

@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('Base name of the resources.')
@minLength(3)
@maxLength(20)
param name string = 'phiguard'

@description('Image to run, by digest: REGISTRY.azurecr.io/phiguard-api:VERSION@sha256:DIGEST (scripts/acr-build.sh prints it).')
param image string

@description('Name of the existing Azure Container Registry the image is pulled from.')
param acrName string

@description('Name of the existing Key Vault (RBAC authorization) holding the secrets and the key-wrapping key.')
param keyVaultName string

@description('Name of the Key Vault key (RSA, 3072+ bits) that wraps content keys.')
param keyVaultKeyName string = 'phiguard-kek'

@description('Globally unique name of the storage account for PHI and the audit archive.')
@minLength(3)
@maxLength(24)
param storageAccountName string

@description('Subnet (delegated to Microsoft.App/environments) of the Container Apps environment.')
param infrastructureSubnetId string

@description('Subnet for the storage account\'s private endpoint.')
param privateEndpointSubnetId string

@description('Private DNS zone privatelink.blob.core.windows.net linked to the VNet.')
param blobPrivateDnsZoneId string

@description('Microsoft Entra tenant of the API\'s app registration.')
param tenantId string = subscription().tenantId

@description('Application (client) ID of the API\'s app registration: the expected token audience.')
param oidcAudience string

@description('Audit archive retention in days; HIPAA documentation retention is six years (2192 days).')
@minValue(2192)
param auditRetentionDays int = 2192

@description('Log Analytics retention in days for operational logs and the audit table.')
@minValue(90)
@maxValue(730)
param logRetentionDays int = 365

@description('Total retention (interactive + long-term archive) of the audit table, in days.')
@minValue(2192)
@maxValue(4383)
param auditTableTotalRetentionDays int = 2192

@description('E-mail address of the on-call team for alerts.')
param alertEmail string

@description('Denied requests in 5 minutes that raise the denied-access alert.')
param deniedAccessThreshold int = 25

@description('Minimum replicas (2 or more keeps the service up through a replica restart).')
@minValue(2)
param minReplicas int = 2

@description('Maximum replicas.')
@maxValue(30)
param maxReplicas int = 10

var appName = '${name}-api'
var phiContainerName = 'phi'
var archiveContainerName = 'audit-archive'
var auditStreamName = 'Custom-PhiguardAudit_CL'
var auditTableName = 'PhiguardAudit_CL'
var secretsDir = '/mnt/secrets-store'

// The audit stream's columns, as auditlog's Logs Ingestion sink sends them
// (docs/auditlog.md): flat columns for reports, the whole event as Event.
// No PHI: actors and entities are keyed pseudonyms.
var auditColumns = [
  { name: 'TimeGenerated', type: 'datetime' }
  { name: 'EventId', type: 'string' }
  { name: 'Action', type: 'string' }
  { name: 'Outcome', type: 'int' }
  { name: 'TypeCode', type: 'string' }
  { name: 'ActorId', type: 'string' }
  { name: 'ActorRoles', type: 'dynamic' }
  { name: 'ClientIp', type: 'string' }
  { name: 'EntityIds', type: 'dynamic' }
  { name: 'PurposeOfUse', type: 'dynamic' }
  { name: 'Service', type: 'string' }
  { name: 'Instance', type: 'string' }
  { name: 'RequestId', type: 'string' }
  { name: 'TraceId', type: 'string' }
  { name: 'Event', type: 'dynamic' }
]

// Built-in role definition IDs (same in every tenant).
var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultCryptoUser: '12338af0-0e69-4776-bea7-57ae8d297424'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  logAnalyticsReader: '73c42c96-874c-492b-b04d-ab87d138a893'
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
}

// Key Vault secret names (letters, digits, '-') and the file each becomes
// under SECRETS_DIR, named as the service's configuration key.
var secretFiles = [
  { secret: 'phi-token-key', file: 'PHI_TOKEN_KEY' }
  { secret: 'audit-signing-key', file: 'AUDIT_SIGNING_KEY' }
  { secret: 'health-token', file: 'HEALTH_TOKEN' }
]

// ---------------------------------------------------------------- identity

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${name}-api-id'
  location: location
}

// ---------------------------------------------------------------- existing

resource acr 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: acrName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource kek 'Microsoft.KeyVault/vaults/keys@2023-07-01' existing = {
  parent: keyVault
  name: keyVaultKeyName
}

// ---------------------------------------------------------------- monitoring

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
    features: {
      disableLocalAuth: true
    }
  }
}

// The audit table: the Logs Ingestion sink's rows, kept six years in total.
resource auditTable 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: workspace
  name: auditTableName
  properties: {
    totalRetentionInDays: auditTableTotalRetentionDays
    plan: 'Analytics'
    schema: {
      name: auditTableName
      columns: auditColumns
    }
  }
}

resource dce 'Microsoft.Insights/dataCollectionEndpoints@2023-03-11' = {
  name: '${name}-dce'
  location: location
  properties: {
    networkAcls: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

resource dcr 'Microsoft.Insights/dataCollectionRules@2023-03-11' = {
  name: '${name}-audit-dcr'
  location: location
  properties: {
    dataCollectionEndpointId: dce.id
    streamDeclarations: {
      '${auditStreamName}': {
        columns: auditColumns
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'audit'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [auditStreamName]
        destinations: ['audit']
        transformKql: 'source'
        outputStream: auditStreamName
      }
    ]
  }
  dependsOn: [auditTable]
}

// ---------------------------------------------------------------- storage

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Disabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'None'
    }
    encryption: {
      requireInfrastructureEncryption: true
      keySource: 'Microsoft.Storage'
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 30
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 30
    }
  }
}

// Patients and documents, encrypted client-side by the storage package
// before they reach this container.
resource phiContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: phiContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The audit trail's system of record: append blobs, one per segment.
resource archiveContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: archiveContainerName
  properties: {
    publicAccess: 'None'
  }
}

// WORM: no blob can be deleted or overwritten for auditRetentionDays after
// it was created; appends to append blobs stay allowed so segments grow.
// Created unlocked (ARM cannot lock); scripts/lock-audit-archive.sh locks it,
// after which the period can only be extended, never shortened or removed.
resource archiveImmutability 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
  parent: archiveContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: auditRetentionDays
    allowProtectedAppendWrites: true
  }
}

resource blobPrivateEndpoint 'Microsoft.Network/privateEndpoints@2023-11-01' = {
  name: '${storageAccountName}-blob-pe'
  location: location
  properties: {
    subnet: {
      id: privateEndpointSubnetId
    }
    privateLinkServiceConnections: [
      {
        name: 'blob'
        properties: {
          privateLinkServiceId: storage.id
          groupIds: ['blob']
        }
      }
    ]
  }
}

resource blobPrivateDnsGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = {
  parent: blobPrivateEndpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: 'blob'
        properties: {
          privateDnsZoneId: blobPrivateDnsZoneId
        }
      }
    ]
  }
}

// ---------------------------------------------------------------- roles

// Append-only access to the archive: create blobs, append blocks, read.
// No delete, no container or policy management. Storage Blob Data
// Contributor would also grant delete; the locked WORM policy blocks
// deletes and overwrites regardless, this role keeps them out of the
// identity's rights in the first place.
resource archiveAppenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'phiguard-audit-archive-appender')
  properties: {
    roleName: 'phiguard audit archive appender (${resourceGroup().name})'
    description: 'Create and append to blobs and read them; no delete, no overwrite of immutable blobs.'
    type: 'CustomRole'
    assignableScopes: [resourceGroup().id]
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
        ]
        notDataActions: []
      }
    ]
  }
}

resource kvSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, identity.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Wrap and unwrap with the one key, not every key of the vault.
resource kvCryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(kek.id, identity.id, roles.keyVaultCryptoUser)
  scope: kek
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultCryptoUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource phiContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(phiContainer.id, identity.id, roles.storageBlobDataContributor)
  scope: phiContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource archiveAppender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(archiveContainer.id, identity.id, 'archive-appender')
  scope: archiveContainer
  properties: {
    roleDefinitionId: archiveAppenderRole.id
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource dcrPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dcr.id, identity.id, roles.monitoringMetricsPublisher)
  scope: dcr
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource logsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, identity.id, roles.logAnalyticsReader)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.logAnalyticsReader)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(acr.id, identity.id, roles.acrPull)
  scope: acr
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---------------------------------------------------------------- app

resource appEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${name}-env'
  location: location
  properties: {
    zoneRedundant: true
    vnetConfiguration: {
      infrastructureSubnetId: infrastructureSubnetId
      internal: false
    }
    // Logs through Azure Monitor diagnostic settings (below): no workspace
    // shared key is read or stored (the workspace has local auth disabled).
    appLogsConfiguration: {
      destination: 'azure-monitor'
    }
  }
}

resource environmentLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: appEnvironment
  properties: {
    workspaceId: workspace.id
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      {
        category: 'ContainerAppConsoleLogs'
        enabled: true
      }
      {
        category: 'ContainerAppSystemLogs'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

resource app 'Microsoft.App/containerApps@2024-03-01' = {
  name: appName
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: appEnvironment.id
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 8080
        transport: 'http'
        allowInsecure: false
        traffic: [
          {
            latestRevision: true
            weight: 100
          }
        ]
      }
      registries: [
        {
          server: acr.properties.loginServer
          identity: identity.id
        }
      ]
      // Key Vault references: Container Apps fetches each secret with the
      // managed identity; no value is in this template or its parameters.
      secrets: [for s in secretFiles: {
        name: s.secret
        keyVaultUrl: '${keyVault.properties.vaultUri}secrets/${s.secret}'
        identity: identity.id
      }]
    }
    template: {
      terminationGracePeriodSeconds: 45
      containers: [
        {
          name: 'api'
          image: image
          resources: {
            cpu: json('0.5')
            memory: '1Gi'
          }
          env: [
            { name: 'APP_ENV', value: 'production' }
            { name: 'ADDR', value: '0.0.0.0:8080' }
            { name: 'DATA_DIR', value: '/var/lib/phiguard' }
            { name: 'MODEL_PATH', value: '/app/model/readmission.json' }
            { name: 'SECRETS_DIR', value: secretsDir }
            { name: 'AZURE_CLIENT_ID', value: identity.properties.clientId }
            { name: 'AZURE_TOKEN_CREDENTIALS', value: 'prod' }
            { name: 'AZURE_KEYVAULT_URL', value: keyVault.properties.vaultUri }
            { name: 'AZURE_KEYVAULT_KEY_NAME', value: keyVaultKeyName }
            { name: 'AZURE_STORAGE_ACCOUNT_URL', value: storage.properties.primaryEndpoints.blob }
            { name: 'AZURE_STORAGE_CONTAINER', value: phiContainerName }
            { name: 'AZURE_AUDIT_ARCHIVE_CONTAINER', value: archiveContainerName }
            { name: 'AZURE_LOGS_ENDPOINT', value: dce.properties.logsIngestion.endpoint }
            { name: 'AZURE_LOGS_RULE_ID', value: dcr.properties.immutableId }
            { name: 'AZURE_LOGS_STREAM', value: auditStreamName }
            { name: 'AZURE_LOG_ANALYTICS_WORKSPACE_ID', value: workspace.properties.customerId }
            { name: 'OIDC_ISSUER', value: '${environment().authentication.loginEndpoint}${tenantId}/v2.0' }
            { name: 'OIDC_AUDIENCE', value: oidcAudience }
            { name: 'SHUTDOWN_DRAIN_DELAY', value: '10s' }
            { name: 'SHUTDOWN_GRACE', value: '20s' }
            { name: 'GOMEMLIMIT', value: '900MiB' }
          ]
          probes: [
            {
              type: 'Startup'
              httpGet: {
                path: '/startupz'
                port: 8080
                scheme: 'HTTP'
              }
              periodSeconds: 2
              timeoutSeconds: 2
              failureThreshold: 30
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/livez'
                port: 8080
                scheme: 'HTTP'
              }
              periodSeconds: 10
              timeoutSeconds: 2
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: 8080
                scheme: 'HTTP'
              }
              periodSeconds: 5
              timeoutSeconds: 2
              failureThreshold: 2
              successThreshold: 1
            }
          ]
          volumeMounts: [
            { volumeName: 'secrets', mountPath: secretsDir }
            { volumeName: 'data', mountPath: '/var/lib/phiguard' }
            { volumeName: 'tmp', mountPath: '/tmp' }
          ]
        }
      ]
      // Secrets as files (SECRETS_DIR), as on AKS with the CSI driver:
      // never in environment variables.
      volumes: [
        {
          name: 'secrets'
          storageType: 'Secret'
          secrets: [for s in secretFiles: {
            secretRef: s.secret
            path: s.file
          }]
        }
        { name: 'data', storageType: 'EmptyDir' }
        { name: 'tmp', storageType: 'EmptyDir' }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'http-concurrency'
            http: {
              metadata: {
                concurrentRequests: '50'
              }
            }
          }
          {
            name: 'cpu'
            custom: {
              type: 'cpu'
              metadata: {
                type: 'Utilization'
                value: '70'
              }
            }
          }
        ]
      }
    }
  }
  dependsOn: [
    kvSecretsUser
    kvCryptoUser
    phiContributor
    archiveAppender
    dcrPublisher
    acrPull
  ]
}

// ---------------------------------------------------------------- alerts

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${name}-oncall'
  location: 'global'
  properties: {
    groupShortName: 'phioncall'
    enabled: true
    emailReceivers: [
      {
        name: 'oncall'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Readiness probe failures of the app's replicas (Container Apps system logs).
resource readinessAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${name}-readiness-failures'
  location: location
  properties: {
    // The table appears with the first logs; do not fail the deployment
    // before that.
    skipQueryValidation: true
    displayName: 'phiguard: readiness probe failures'
    description: 'Replicas fail /readyz: a dependency (Key Vault, storage, audit sink) is down or the service is draining too often.'
    severity: 1
    enabled: true
    scopes: [workspace.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'ContainerAppSystemLogs | where ContainerAppName == "${appName}" | where Reason == "ProbeFailed" and Log has "Readiness"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 3
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
  dependsOn: [environmentLogs]
}

// Audit delivery failures: the service logs (JSON, PHI-masked) an error
// whenever the audit sink cannot deliver or spools events.
resource auditDeliveryAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${name}-audit-delivery-failures'
  location: location
  properties: {
    // The table appears with the first logs; do not fail the deployment
    // before that.
    skipQueryValidation: true
    displayName: 'phiguard: audit delivery failures'
    description: 'The audit trail cannot reach Azure Monitor or the archive; PHI requests fail closed until it recovers.'
    severity: 1
    enabled: true
    scopes: [workspace.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: 'ContainerAppConsoleLogs | where ContainerAppName == "${appName}" | extend e = parse_json(Log) | where tostring(e.level) == "ERROR" and tostring(e.msg) has "audit"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
  dependsOn: [environmentLogs]
}

// A spike of denied accesses: credential stuffing, a misconfigured client
// or an insider probing records.
resource deniedSpikeAlert 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${name}-denied-access-spike'
  location: location
  properties: {
    displayName: 'phiguard: spike of denied accesses'
    description: 'More denied requests than usual in the audit trail.'
    severity: 2
    enabled: true
    scopes: [workspace.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          // 401 and 403 answers: outcome 4 (minor failure) with that status.
          query: '${auditTableName} | summarize arg_max(TimeGenerated, *) by EventId | where Outcome == 4 | extend status = tostring(Event.outcomeDesc) | where status startswith "401" or status startswith "403"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: deniedAccessThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [actionGroup.id]
    }
  }
  dependsOn: [auditTable]
}

output fqdn string = app.properties.configuration.ingress.fqdn
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
output storageAccount string = storage.name
output archiveContainer string = archiveContainer.name
output logsIngestionEndpoint string = dce.properties.logsIngestion.endpoint
output auditRuleId string = dcr.properties.immutableId
