-- attest: evidence verified by the service itself, and the evidence lifecycle.

-- document_mrz: the document number is kept only as a keyed hash (HMAC-SHA-256, hex), so the
-- same document presented twice is detectable without storing the number.
ALTER TABLE evidence ADD COLUMN document_hash text;
CREATE INDEX evidence_document_hash ON evidence (tenant, document_hash)
    WHERE document_hash IS NOT NULL;

-- A reviewer may reject pending evidence or withdraw verified evidence: who and when.
ALTER TABLE evidence ADD COLUMN closed_by uuid REFERENCES api_clients (id);
ALTER TABLE evidence ADD COLUMN closed_at timestamptz;
