-- 003_orders_public_views: the orders module's public interface, v1, in
-- PostgreSQL's dialect.  The promises are those of sql/orders/003_*.sql
-- and docs/MODULES.md ("The orders module's public interface"): exact
-- money columns only, columns only ever added, a new shape as a _v2 view
-- beside v1.

CREATE OR REPLACE VIEW orders_v1 AS
SELECT id, product_id, quantity,
    COALESCE(price_micros, CAST(round(price * 1000000.0) AS BIGINT))
	AS price_micros,
    date, received_at
FROM orders;

CREATE OR REPLACE VIEW product_totals_v1 AS
SELECT product_id, orders, quantity, revenue_units, revenue_micros
FROM product_totals;
