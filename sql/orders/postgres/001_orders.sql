-- 001_orders (PostgreSQL): the same tables as ../001_orders.sql, in
-- PostgreSQL's dialect; that file says what each column is for.
--
-- What differs: SQLite's INTEGER is 64 bits, so every integer here is
-- BIGINT, and its REAL is a double; product_totals is kept by a
-- PL/pgSQL trigger in the same transaction as the insert, with the same
-- arithmetic (revenue as whole units plus a micro-unit remainder, so no
-- sum drifts or overflows).  Orders are append-only.

CREATE TABLE IF NOT EXISTS orders (
	id		BIGINT PRIMARY KEY,
	product_id	TEXT NOT NULL,
	quantity	BIGINT NOT NULL,
	price		DOUBLE PRECISION NOT NULL,
	date		TEXT,
	price_micros	BIGINT,
	received_at	BIGINT NOT NULL DEFAULT
	    ((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT)
);

-- Start-up reads the last minutes of orders by receive time.
CREATE INDEX IF NOT EXISTS orders_received_at ON orders(received_at);

CREATE TABLE IF NOT EXISTS product_totals (
	product_id	TEXT PRIMARY KEY,
	orders		BIGINT NOT NULL DEFAULT 0,
	quantity	BIGINT NOT NULL DEFAULT 0,
	revenue_units	BIGINT NOT NULL DEFAULT 0,
	revenue_micros	BIGINT NOT NULL DEFAULT 0
);

CREATE OR REPLACE FUNCTION orders_product_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	pm BIGINT := COALESCE(NEW.price_micros,
	    round(NEW.price * 1000000.0)::BIGINT);
BEGIN
	INSERT INTO product_totals AS t (product_id, orders, quantity,
	    revenue_units, revenue_micros)
	VALUES (NEW.product_id, 1, NEW.quantity,
	    NEW.quantity * (pm / 1000000) +
		NEW.quantity * (pm % 1000000) / 1000000,
	    NEW.quantity * (pm % 1000000) % 1000000)
	ON CONFLICT (product_id) DO UPDATE SET
	    orders = t.orders + 1,
	    quantity = t.quantity + excluded.quantity,
	    revenue_units = t.revenue_units + excluded.revenue_units +
		(t.revenue_micros + excluded.revenue_micros) / 1000000,
	    revenue_micros = (t.revenue_micros + excluded.revenue_micros)
		% 1000000;
	RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER orders_product_totals AFTER INSERT ON orders
	FOR EACH ROW EXECUTE FUNCTION orders_product_totals();

-- Idempotency-Key: the first response to a key, replayed on a retry.
CREATE TABLE IF NOT EXISTS idempotency (
	key		TEXT PRIMARY KEY,
	request_hash	TEXT NOT NULL,
	status		BIGINT NOT NULL,
	response	TEXT NOT NULL,
	location	TEXT,
	created_at	BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS idempotency_created_at ON idempotency(created_at);
