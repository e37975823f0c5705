# For the applications that use the KSeF tokens ksefctl stores: read the
# current token and nothing else — no writes, no listing, no login material.
# Narrow the glob to one environment or one company (e.g.
# "secret/data/ksef/prod/5265877635/*") to give each consumer only its own.
#
#   vault policy write ksef-consumer examples/vault/consumer-policy.hcl

path "secret/data/ksef/*" {
  capabilities = ["read"]
}
