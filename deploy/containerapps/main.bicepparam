// Parameters for deploy/containerapps/main.bicep. Replace every <...> value;
// none of them is a secret (secrets stay in Key Vault).
using './main.bicep'

param name = 'phiguard'
param image = '<registry>.azurecr.io/phiguard-api:<version>@sha256:<digest>'
param acrName = '<registry>'
param keyVaultName = '<key-vault-name>'
param keyVaultKeyName = 'phiguard-kek'
param storageAccountName = '<storage-account-name>'
param infrastructureSubnetId = '/subscriptions/<subscription-id>/resourceGroups/<network-rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<aca-subnet>'
param privateEndpointSubnetId = '/subscriptions/<subscription-id>/resourceGroups/<network-rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<pe-subnet>'
param blobPrivateDnsZoneId = '/subscriptions/<subscription-id>/resourceGroups/<network-rg>/providers/Microsoft.Network/privateDnsZones/privatelink.blob.core.windows.net'
param oidcAudience = '<api-application-client-id>'
param alertEmail = '<oncall@example.org>'
param auditRetentionDays = 2192
param minReplicas = 2
param maxReplicas = 10
