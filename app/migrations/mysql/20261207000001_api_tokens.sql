-- API tokens: a program's credentials. Only the SHA-256 of a token is
-- stored (the token itself is shown once); `prefix` is its first
-- characters, to tell tokens apart. `scopes` is a space-separated list
-- (read, buy, sell, admin). Expand-only: the previous release ignores it.
CREATE TABLE api_tokens (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    name VARCHAR(100) NOT NULL,
    token_hash CHAR(64) CHARACTER SET ascii NOT NULL,
    prefix VARCHAR(16) CHARACTER SET ascii NOT NULL,
    scopes VARCHAR(64) CHARACTER SET ascii NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT NULL,
    revoked_at BIGINT NULL,
    UNIQUE KEY api_tokens_hash (token_hash),
    KEY api_tokens_user (user_id),
    CONSTRAINT api_tokens_user_fk FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The first answer to a purchase or payment sent with an Idempotency-Key,
-- per user and key: a retry with the same request gets it again. The row
-- is written in the transaction that does the work, so the unique key
-- decides between two requests sent at once.
CREATE TABLE idempotency_keys (
    user_id BIGINT NOT NULL,
    idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    request_hash CHAR(64) CHARACTER SET ascii NOT NULL,
    status BIGINT NOT NULL,
    body VARCHAR(8000) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, idem_key),
    KEY idempotency_keys_created (created_at),
    CONSTRAINT idempotency_keys_user_fk FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
