# The read-only role of pull-request plans (examples/github/ksefctl.yml,
# examples/gitlab/.gitlab-ci.yml): everything `ksefctl plan --no-session-cache`
# reads, and no write, delete or lock.  The apply on main uses
# examples/vault/ksefctl-policy.hcl under its own role.
#
#   vault policy write ksefctl-plan examples/vault/ksefctl-plan-policy.hcl
#
# What this still exposes, on purpose: a plan logs into every company's KSeF
# context to list its tokens, so it must read the login material; and KV v2
# returns a secret's data with every read, so the token secrets it observes
# are readable too.  Anyone who can run a pull-request pipeline can read both
# with this role — keep those people few (CODEOWNERS, protected branches).

# Which token Vault holds for each declared name (plan reads referenceNumber).
path "secret/data/ksef/*" {
  capabilities = ["read"]
}

# Ownership records, and the --prune walk over the token folder.
path "secret/metadata/ksef/*" {
  capabilities = ["read", "list"]
}

# Login material for each context: a plan logs into KSeF with it.
path "secret/data/ksef-admin/*" {
  capabilities = ["read"]
}

# KSeF certificates (kind: CertificatePolicy): which certificate each secret
# holds (serialNumber). KV v2 returns the private key with that read: this
# role can read the managed keys, as it can read the login material.
path "secret/data/ksef-certs/*" {
  capabilities = ["read"]
}
