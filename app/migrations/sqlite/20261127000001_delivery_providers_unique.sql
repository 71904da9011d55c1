-- One row per delivery provider: a unique name, so the seed can be
-- applied again without adding copies. Expand-only: the app never inserts
-- providers, so instances of the previous release are unaffected.

-- Copies left by an earlier repeated seed: deliveries move to the first
-- row of each name, then the copies go.
UPDATE delivery_assignments
    SET provider_id = (
        SELECT MIN(k.id) FROM delivery_providers k
        WHERE k.name = (SELECT d.name FROM delivery_providers d WHERE d.id = delivery_assignments.provider_id))
    WHERE provider_id NOT IN (SELECT MIN(id) FROM delivery_providers GROUP BY name);
DELETE FROM delivery_providers
    WHERE id NOT IN (SELECT MIN(id) FROM delivery_providers GROUP BY name);

CREATE UNIQUE INDEX IF NOT EXISTS delivery_providers_name ON delivery_providers(name);

-- The seed, idempotent: a provider already present is left as it is.
INSERT INTO delivery_providers (name, coverage_area, cost_cents) VALUES
    ('DHL', 'Internacional', 5000),
    ('FedEx', 'Internacional', 4500),
    ('Envia', 'Nacional', 2000),
    ('Servientrega', 'Nacional', 1500)
    ON CONFLICT (name) DO NOTHING;
