-- Unpaid purchases hold their copies until `reserved_until` (Unix
-- seconds); then they expire and the copies return. Purchases unpaid now
-- get 15 minutes from this migration. A row the previous release writes
-- during a rolling deploy has none: the sweep gives it one.
ALTER TABLE purchases ADD COLUMN reserved_until BIGINT;
UPDATE purchases SET reserved_until = CAST(strftime('%s', 'now') AS INTEGER) + 900
    WHERE status = 'Pending Payment';
CREATE INDEX purchases_reserved ON purchases(status, reserved_until);

-- Limits shared by every instance: one fixed-window counter per bucket
-- ('login', 'fail', ...) and key, stored as a hash of fixed size.
CREATE TABLE limits (
    bucket TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (bucket, key_hash)
);
CREATE INDEX limits_window ON limits(window_start);

-- Secrets every instance shares (the key signing anonymous forms), made
-- by the first instance that needs one.
CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Emails are compared exactly from now on, as the app writes them
-- (lower-case). A row whose lower-cased address another row already has
-- is left as it is.
UPDATE users SET email = lower(trim(email))
    WHERE email <> lower(trim(email)) COLLATE BINARY
    AND NOT EXISTS (SELECT 1 FROM users o WHERE o.email = lower(trim(users.email)) COLLATE BINARY AND o.id <> users.id);
