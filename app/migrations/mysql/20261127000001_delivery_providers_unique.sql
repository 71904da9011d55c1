-- One row per delivery provider: a unique name, so the seed can be
-- applied again without adding copies. Expand-only: the app never inserts
-- providers, so instances of the previous release are unaffected.

-- Copies left by an earlier repeated seed: deliveries move to the first
-- row of each name, then the copies go.
UPDATE delivery_assignments a
    JOIN delivery_providers d ON d.id = a.provider_id
    JOIN (SELECT name, MIN(id) AS keep_id FROM delivery_providers GROUP BY name) k ON k.name = d.name
    SET a.provider_id = k.keep_id
    WHERE a.provider_id <> k.keep_id;
DELETE d FROM delivery_providers d
    JOIN (SELECT name, MIN(id) AS keep_id FROM delivery_providers GROUP BY name) k ON k.name = d.name
    WHERE d.id <> k.keep_id;

ALTER TABLE delivery_providers ADD UNIQUE KEY delivery_providers_name (name);

-- The seed, idempotent: a provider already present is left as it is.
INSERT INTO delivery_providers (name, coverage_area, cost_cents) VALUES
    ('DHL', 'Internacional', 5000),
    ('FedEx', 'Internacional', 4500),
    ('Envia', 'Nacional', 2000),
    ('Servientrega', 'Nacional', 1500)
    ON DUPLICATE KEY UPDATE name = name;
