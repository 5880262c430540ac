-- When another node last asked for a destination its holder keeps (store.Claim): a holder without
-- live jobs of its own hands the claim over to the node that consumes them. 0: nobody asked
-- since the holder took it.
ALTER TABLE destination_claims ADD COLUMN wanted_at BIGINT NOT NULL DEFAULT 0;
