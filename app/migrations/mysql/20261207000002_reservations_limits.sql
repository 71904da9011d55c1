-- Unpaid purchases hold their copies until `reserved_until` (Unix
-- seconds); then they expire and the copies return. Purchases unpaid now
-- get 15 minutes from this migration. A row the previous release writes
-- during a rolling deploy has none: the sweep gives it one.
ALTER TABLE purchases ADD COLUMN reserved_until BIGINT NULL;
UPDATE purchases SET reserved_until = UNIX_TIMESTAMP() + 900
    WHERE status = 'Pending Payment';
CREATE INDEX purchases_reserved ON purchases(status, reserved_until);

-- Limits shared by every instance: one fixed-window counter per bucket
-- ('login', 'fail', ...) and key, stored as a hash of fixed size.
CREATE TABLE limits (
    bucket VARCHAR(16) CHARACTER SET ascii NOT NULL,
    key_hash CHAR(32) CHARACTER SET ascii NOT NULL,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (bucket, key_hash),
    KEY limits_window (window_start)
) ENGINE=InnoDB;

-- Secrets every instance shares (the key signing anonymous forms), made
-- by the first instance that needs one.
CREATE TABLE app_secrets (
    name VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
    value VARCHAR(128) CHARACTER SET ascii NOT NULL
) ENGINE=InnoDB;

-- Emails are compared byte for byte: `vïctim@x.com` is never
-- `victim@x.com`, nor `Victim@x.com` (the app writes them lower-case).
ALTER TABLE users MODIFY email VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
-- Rows written otherwise are lower-cased, unless another row already has
-- that address (then left as they are).
UPDATE users u
    LEFT JOIN users o ON o.email = LOWER(TRIM(u.email)) AND o.id <> u.id
    SET u.email = LOWER(TRIM(u.email))
    WHERE o.id IS NULL AND u.email <> LOWER(TRIM(u.email));
