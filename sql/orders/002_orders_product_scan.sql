-- 002_orders_product_scan: drop the orders(product_id, id) index.
--
-- Every POST /orders commit group holds orders for many products, and
-- this index put one more leaf page per distinct product into every
-- commit's WAL frames (about 30 pages of 4 KiB per group in the
-- benchmark): it cost the writer about a third of its time per order.
-- GET /orders?product_id= now scans orders by id, newest first, until
-- its page is full: as fast as before for products that sell often,
-- a full scan (about 55 ms per million orders, on the reader thread)
-- for one that sells rarely; a product never sold is answered from
-- product_totals without a scan.  docs/PERFORMANCE.md has the numbers.

DROP INDEX IF EXISTS orders_product_id;
