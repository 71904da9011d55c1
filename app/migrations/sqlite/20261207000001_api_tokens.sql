-- API tokens: a program's credentials. Only the SHA-256 of a token is
-- stored (the token itself is shown once); `prefix` is its first
-- characters, to tell tokens apart. `scopes` is a space-separated list
-- (read, buy, sell, admin). Expand-only: the previous release ignores it.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

-- The first answer to a purchase or payment sent with an Idempotency-Key,
-- per user and key: a retry with the same request gets it again. The row
-- is written in the transaction that does the work, so the unique key
-- decides between two requests sent at once.
CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL REFERENCES users(id),
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
