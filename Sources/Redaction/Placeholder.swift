// Redaction module.
