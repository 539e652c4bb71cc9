-- 003_orders_public_views: the orders module's public interface, v1.
--
-- The tables above belong to this module and may change shape in any
-- later migration.  Another module reads orders only through these two
-- views, and requires "orders" to do so.  docs/MODULES.md ("The orders
-- module's public interface") documents each column; what it promises:
--
-- - money is exact integers (micro-units, or whole units plus micros):
--   no REAL column is part of v1, so the seed's price is not in it;
-- - a released view only gains columns, at the end; a column is never
--   renamed, retyped, dropped or given another meaning;
-- - a shape that cannot be reached that way comes as orders_v2 (or
--   product_totals_v2) beside v1, in a new migration, and v1 stays.
--
-- Plain views: SQLite folds them into the query that reads them, so a
-- filter on received_at still uses orders_received_at.

CREATE VIEW IF NOT EXISTS orders_v1 AS
SELECT id, product_id, quantity,
    COALESCE(price_micros, CAST(round(price * 1000000.0) AS INTEGER))
	AS price_micros,
    date, received_at
FROM orders;

CREATE VIEW IF NOT EXISTS product_totals_v1 AS
SELECT product_id, orders, quantity, revenue_units, revenue_micros
FROM product_totals;
