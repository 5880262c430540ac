-- A destination's consent policy (destination.ConsentPolicy as JSON): the consents an update
-- must have granted to be sent to it. Existing destinations require none.
ALTER TABLE destinations ADD COLUMN consent_policy TEXT NOT NULL DEFAULT '{"require":[]}';
