-- attest: the sharing signal of issuance (issue 11). Each token decision asks whether the
-- requesting client already asked for this subject's tokens in the last 24 h: an index
-- probe on (subject_id, requested_by, issued_at) instead of reading every token of the
-- subject in the window. Only a client new to the subject counts the others.
CREATE INDEX attestations_subject_requester ON attestations (subject_id, requested_by, issued_at);
