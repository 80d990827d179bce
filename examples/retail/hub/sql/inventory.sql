-- Database ${PREFIX}inventory (scripts/hub deploy): the stock system, captured by connector ${PREFIX}inventory-cdc
-- into topic ${PREFIX}inventory.public.stock.
-- Units on hand per product and location (stores and the warehouse).
CREATE TABLE IF NOT EXISTS stock (
  product_id text    NOT NULL,
  location   text    NOT NULL,
  on_hand    integer NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (product_id, location)
);
ALTER TABLE stock REPLICA IDENTITY FULL;
