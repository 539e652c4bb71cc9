-- 001_orders: the seed's orders table plus what the server needs.
--
-- orders keeps the seed's columns (id, product_id, quantity, price, date)
-- so that the sqlite3 shell shows what the original app stored; the
-- server adds price_micros (the exact unit price in micro-units, the
-- figure every sum is made from) and received_at (ms since the epoch,
-- UTC, when the server received the order).  A row written by another
-- tool with only the seed's columns still counts: the trigger and the
-- analytics fall back to round(price * 1e6), and received_at defaults to
-- the time of the insert.
--
-- product_totals is maintained by a trigger, so it is always in the same
-- transaction as the insert that changes it, whoever inserts.  Revenue is
-- kept as whole units plus a micro-unit remainder (0 <= micros < 1e6) so
-- that no single order can overflow SQLite's 64-bit integers (an order is
-- at most 1e6 x 1e9 = 1e15 units).  Orders are append-only: nothing here
-- handles UPDATE or DELETE of orders.

CREATE TABLE IF NOT EXISTS orders (
	id		INTEGER PRIMARY KEY,
	product_id	TEXT NOT NULL,
	quantity	INTEGER NOT NULL,
	price		REAL NOT NULL,
	date		TEXT,
	price_micros	INTEGER,
	received_at	INTEGER NOT NULL DEFAULT
	    (CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER))
);

-- Start-up reads the last minutes of orders by receive time.
CREATE INDEX IF NOT EXISTS orders_received_at ON orders(received_at);
-- GET /orders?product_id=...: newest first within a product.
CREATE INDEX IF NOT EXISTS orders_product_id ON orders(product_id, id);

CREATE TABLE IF NOT EXISTS product_totals (
	product_id	TEXT PRIMARY KEY,
	orders		INTEGER NOT NULL DEFAULT 0,
	quantity	INTEGER NOT NULL DEFAULT 0,
	revenue_units	INTEGER NOT NULL DEFAULT 0,
	revenue_micros	INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- One UPSERT per insert: q x price split into (units, micros) first, so
-- the carry from the micro-units never needs more than one step.
CREATE TRIGGER IF NOT EXISTS orders_product_totals AFTER INSERT ON orders
BEGIN
	INSERT INTO product_totals(product_id, orders, quantity, revenue_units,
	    revenue_micros)
	SELECT NEW.product_id, 1, NEW.quantity,
	    NEW.quantity * (pm / 1000000) + NEW.quantity * (pm % 1000000) / 1000000,
	    NEW.quantity * (pm % 1000000) % 1000000
	FROM (SELECT COALESCE(NEW.price_micros,
	    CAST(round(NEW.price * 1000000.0) AS INTEGER)) AS pm) WHERE true
	ON CONFLICT(product_id) DO UPDATE SET
	    orders = orders + 1,
	    quantity = quantity + excluded.quantity,
	    revenue_units = revenue_units + excluded.revenue_units +
		(revenue_micros + excluded.revenue_micros) / 1000000,
	    revenue_micros = (revenue_micros + excluded.revenue_micros) % 1000000;
END;

-- Idempotency-Key: the first response to a key, replayed on a retry.
-- request_hash tells a retry from a different request under the same key.
CREATE TABLE IF NOT EXISTS idempotency (
	key		TEXT PRIMARY KEY,
	request_hash	TEXT NOT NULL,
	status		INTEGER NOT NULL,
	response	TEXT NOT NULL,
	location	TEXT,
	created_at	INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS idempotency_created_at ON idempotency(created_at);
