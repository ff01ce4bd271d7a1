-- attest: the second reviewer's approval comment, kept on the evidence (shown in its view)
-- and never in the audit trail, which records only whether one was given: free text may
-- hold personal data.
ALTER TABLE evidence ADD COLUMN approval_comment text;
