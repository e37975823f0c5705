"""Permission grants as a kind of credential (docs/grants.md): observe, plan, admit, execute."""
