-- Session ids are stored as the SHA-256 of the cookie's token from now on:
-- sessions stored under the plain token can no longer be found, so they go.
DELETE FROM sessions;
-- When the session was last used, for the idle expiry.
ALTER TABLE sessions ADD COLUMN seen_at BIGINT NOT NULL DEFAULT 0;
-- The size of a book's cover file, for each seller's upload quota.
ALTER TABLE books ADD COLUMN cover_bytes BIGINT NOT NULL DEFAULT 0;
