# What ksefctl needs in Vault / OpenBao, for the default layout:
#   tokens:      KV v2 mount "secret", path template "ksef/{environment}/{nip}/{token}"
#   login data:  "secret/ksef-admin/{nip}" (certificate + privateKey, or a KSeF token)
#   owner locks: "secret/.ksefctl/locks/{owner}"
#   sessions:    "secret/.ksefctl/sessions/{owner}/..." (cached KSeF refresh tokens)
# Change "secret" and the folders if your manifest uses another mount or template.
#
#   vault policy write ksefctl examples/vault/ksefctl-policy.hcl

# Token secrets: observe the current version, write new versions with
# check-and-set (create for a new path, update for a rotation). No "delete":
# ksefctl never removes data through this path.
path "secret/data/ksef/*" {
  capabilities = ["create", "read", "update"]
}

# Ownership records (custom_metadata) and the --prune walk over the token folder.
path "secret/metadata/ksef/*" {
  capabilities = ["read", "update", "list"]
}

# Soft delete of one version (recoverable with `vault kv undelete`).
# "destroy" and metadata "delete" are deliberately absent: history is kept.
path "secret/delete/ksef/*" {
  capabilities = ["update"]
}

# Login material for each context: read only.
path "secret/data/ksef-admin/*" {
  capabilities = ["read"]
}

# Per-owner lease locks (check-and-set writes; max_versions set once on creation).
path "secret/data/.ksefctl/locks/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/.ksefctl/locks/*" {
  capabilities = ["update"]
}

# Cached KSeF sessions: a refresh token per context (it lives at most 7 days)
# so repeat runs skip the full login. Check-and-set writes, max_versions=1 set
# on creation, and removal of every version by break-glass `ksefctl revoke`.
# Leave these two out (or run with --no-session-cache) to log in fully every run.
path "secret/data/.ksefctl/sessions/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/.ksefctl/sessions/*" {
  capabilities = ["update", "delete"]
}

# KSeF certificates (kind: CertificatePolicy, path "ksef-certs/{environment}/{nip}/{certificate}"):
# certificate + private key written with check-and-set, ownership metadata, and
# the soft delete of a certificate no longer declared. A TokenPolicy that logs
# in with a managed certificate reads the same path.
path "secret/data/ksef-certs/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/ksef-certs/*" {
  capabilities = ["read", "update"]
}
path "secret/delete/ksef-certs/*" {
  capabilities = ["update"]
}
