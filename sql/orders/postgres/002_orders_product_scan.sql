-- 002_orders_product_scan (PostgreSQL): ../002 drops the orders
-- (product_id, id) index that SQLite's 001 made; this dialect's 001
-- never made it.  Kept so that both dialects number alike.

DROP INDEX IF EXISTS orders_product_id;
