-- The bookstore schema. Money is integer cents; times are Unix seconds.
CREATE TABLE users (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(254) NOT NULL,
    password VARCHAR(255) NOT NULL,
    is_admin BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE KEY users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE books (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    title VARCHAR(200) NOT NULL,
    author VARCHAR(200) NOT NULL,
    description VARCHAR(2000) NOT NULL,
    price_cents BIGINT NOT NULL,
    stock BIGINT NOT NULL,
    seller_id BIGINT NOT NULL,
    cover VARCHAR(100),
    created_at BIGINT NOT NULL,
    KEY books_title (title),
    KEY books_author (author),
    KEY books_seller (seller_id),
    CONSTRAINT books_seller_fk FOREIGN KEY (seller_id) REFERENCES users(id),
    CONSTRAINT books_price_ok CHECK (price_cents >= 0),
    CONSTRAINT books_stock_ok CHECK (stock >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE purchases (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    book_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    total_cents BIGINT NOT NULL,
    status VARCHAR(32) NOT NULL,
    created_at BIGINT NOT NULL,
    KEY purchases_user (user_id),
    KEY purchases_book (book_id),
    CONSTRAINT purchases_user_fk FOREIGN KEY (user_id) REFERENCES users(id),
    CONSTRAINT purchases_book_fk FOREIGN KEY (book_id) REFERENCES books(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE payments (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    purchase_id BIGINT NOT NULL,
    amount_cents BIGINT NOT NULL,
    payment_method VARCHAR(32) NOT NULL,
    payment_status VARCHAR(32) NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE KEY payments_purchase (purchase_id),
    CONSTRAINT payments_purchase_fk FOREIGN KEY (purchase_id) REFERENCES purchases(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE delivery_providers (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL,
    coverage_area VARCHAR(100) NOT NULL,
    cost_cents BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE delivery_assignments (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    purchase_id BIGINT NOT NULL,
    provider_id BIGINT NOT NULL,
    UNIQUE KEY delivery_purchase (purchase_id),
    CONSTRAINT delivery_purchase_fk FOREIGN KEY (purchase_id) REFERENCES purchases(id),
    CONSTRAINT delivery_provider_fk FOREIGN KEY (provider_id) REFERENCES delivery_providers(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE sessions (
    id VARCHAR(64) PRIMARY KEY,
    user_id BIGINT NULL,
    csrf VARCHAR(64) NOT NULL,
    flash VARCHAR(1000) NULL,
    expires_at BIGINT NOT NULL,
    KEY sessions_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO delivery_providers (name, coverage_area, cost_cents) VALUES
    ('DHL', 'Internacional', 5000),
    ('FedEx', 'Internacional', 4500),
    ('Envia', 'Nacional', 2000),
    ('Servientrega', 'Nacional', 1500);
