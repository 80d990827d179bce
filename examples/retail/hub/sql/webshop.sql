-- Database ${PREFIX}webshop (scripts/hub deploy): the web shop, captured by connector ${PREFIX}webshop-cdc
-- into topics ${PREFIX}webshop.public.orders and ${PREFIX}webshop.public.order_lines.
-- The web shop's orders and their lines. Prices are decimal amounts; times carry their time zone.
CREATE TABLE IF NOT EXISTS orders (
  order_id     text PRIMARY KEY,
  customer_ref text,
  status       text NOT NULL DEFAULT 'PAID',
  placed_at    timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS order_lines (
  order_id      text    NOT NULL REFERENCES orders(order_id) ON DELETE CASCADE,
  line_no       integer NOT NULL,
  product_code  text    NOT NULL,
  quantity      integer NOT NULL,
  price         numeric(10,2) NOT NULL,
  discount_code text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, line_no)
);
ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE order_lines REPLICA IDENTITY FULL;
