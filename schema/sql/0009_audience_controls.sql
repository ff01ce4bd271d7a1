-- attest: audience controls for rules that change at short notice (DESIGN.md, "Policies and
-- audiences"): an audience can be suspended at once (no new tokens; outstanding ones
-- SUSPENDED in their status lists), and may cap the distinct holder keys per subject in a
-- sliding 24 h window (a sharing signal). A policy version may be scheduled: published at
-- once, governing from effective_at.
ALTER TABLE audiences ADD COLUMN suspended_at timestamptz;
ALTER TABLE audiences ADD COLUMN max_holder_keys integer CHECK (max_holder_keys > 0);
CREATE INDEX attestations_subject_audience ON attestations (subject_id, audience, issued_at);
ALTER TABLE policies ADD COLUMN effective_at timestamptz;
