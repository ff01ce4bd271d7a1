-- attest: issuance's indexes on attestations (issue 11).
--
-- Each token decision asks whether the requesting client already asked for this subject's
-- tokens in the last 24 h: an index probe on (subject_id, requested_by, issued_at) instead
-- of reading every token of the subject in the window. Only a client new to the subject
-- counts the others.
CREATE INDEX attestations_subject_requester ON attestations (subject_id, requested_by, issued_at);
-- Every token insert maintains every index: two of them were redundant. attestations_kid
-- (0008) repeats attestations_kid_expiry (0003) column for column, and the lookups by
-- subject alone are served by the indexes that lead with subject_id (subject_expiry,
-- subject_audience, subject_requester).
DROP INDEX attestations_kid;
DROP INDEX attestations_subject;
