-- The bookstore schema. Money is integer cents; times are Unix seconds.
CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE books (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL COLLATE NOCASE,
    author TEXT NOT NULL COLLATE NOCASE,
    description TEXT NOT NULL DEFAULT '',
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    stock BIGINT NOT NULL CHECK (stock >= 0),
    seller_id BIGINT NOT NULL REFERENCES users(id),
    cover TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX books_title ON books(title);
CREATE INDEX books_author ON books(author);
CREATE INDEX books_seller ON books(seller_id);

CREATE TABLE purchases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id),
    book_id BIGINT NOT NULL REFERENCES books(id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    total_cents BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX purchases_user ON purchases(user_id);
CREATE INDEX purchases_book ON purchases(book_id);

CREATE TABLE payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    purchase_id BIGINT NOT NULL UNIQUE REFERENCES purchases(id),
    amount_cents BIGINT NOT NULL,
    payment_method TEXT NOT NULL,
    payment_status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE delivery_providers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    coverage_area TEXT NOT NULL,
    cost_cents BIGINT NOT NULL
);

CREATE TABLE delivery_assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    purchase_id BIGINT NOT NULL UNIQUE REFERENCES purchases(id),
    provider_id BIGINT NOT NULL REFERENCES delivery_providers(id)
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id BIGINT REFERENCES users(id),
    csrf TEXT NOT NULL,
    flash TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);

INSERT INTO delivery_providers (name, coverage_area, cost_cents) VALUES
    ('DHL', 'Internacional', 5000),
    ('FedEx', 'Internacional', 4500),
    ('Envia', 'Nacional', 2000),
    ('Servientrega', 'Nacional', 1500);
