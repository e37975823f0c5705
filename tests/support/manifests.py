"""A valid TokenPolicy manifest that tests mutate (loader, fuzzing, hostile input)."""

VALID = """\
apiVersion: ksefctl/v1
kind: TokenPolicy
metadata:
  name: acme
spec:
  ksef:
    environment: test
  vault:
    mount: secret
    path: "ksef/{environment}/{nip}/{token}"
  auth:
    certificate:
      vault: "ksef-admin/{nip}"
  permissionSets:
    erp: [InvoiceRead, InvoiceWrite]
  defaults:
    tokens:
      - name: erp
        permissionSet: erp
        rotateEvery: 90d
  contexts:
    - nip: "5265877635"
    - nip: "7762811692"
      tokens:
        - name: reader
          permissions: [InvoiceRead]
          description: "BI read-only"
"""
