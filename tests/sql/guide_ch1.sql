-- Chapter 1 of the getting-started guide, as written (explicit refreshes instead of the scheduler).
CREATE EXTENSION IF NOT EXISTS pg_trickle;
CREATE TABLE products (
id SERIAL PRIMARY KEY,
category TEXT NOT NULL,
price NUMERIC(10,2) NOT NULL,
in_stock BOOLEAN NOT NULL DEFAULT true
);
INSERT INTO products (category, price) VALUES
('Electronics', 299.99),
('Electronics', 49.99),
('Books', 14.99),
('Books', 24.99),
('Books', 9.99);
SELECT pgtrickle.create_stream_table(
name => 'category_summary',
query => $$
SELECT
category,
COUNT(*) AS product_count,
ROUND(AVG(price), 2) AS avg_price,
MIN(price) AS min_price,
MAX(price) AS max_price,
COUNT(*) FILTER (WHERE in_stock) AS in_stock_count
FROM products
GROUP BY category
$$,
schedule => '1s'
);
SELECT category, product_count, avg_price, min_price, max_price, in_stock_count
FROM category_summary ORDER BY category;
INSERT INTO products (category, price) VALUES ('Books', 39.99);
SELECT pgtrickle.refresh_stream_table('category_summary');
SELECT category, product_count, avg_price, min_price, max_price, in_stock_count
FROM category_summary WHERE category = 'Books';
UPDATE products SET price = 19.99 WHERE price = 299.99;
SELECT pgtrickle.refresh_stream_table('category_summary');
SELECT category, product_count, avg_price, min_price, max_price, in_stock_count
FROM category_summary WHERE category = 'Electronics';
SELECT pgtrickle.drop_stream_table('category_summary'); DROP TABLE products;
