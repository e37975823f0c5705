"""KSeF certificates as a kind of credential (docs/certificates.md): observe, plan, admit, execute."""
