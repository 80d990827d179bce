-- Database ${PREFIX}pos (scripts/hub deploy): the point-of-sale system, captured by connector ${PREFIX}pos-cdc
-- into topic ${PREFIX}pos.public.sale_lines.
-- The tills' sale lines. Money in whole cents; sold_at is the store's local wall clock (no time zone).
CREATE TABLE IF NOT EXISTS sale_lines (
  store_code       text    NOT NULL,
  till_no          integer NOT NULL,
  receipt_no       text    NOT NULL,
  line_no          integer NOT NULL,
  sku              text    NOT NULL,
  qty              integer NOT NULL,
  unit_price_cents bigint  NOT NULL,
  promo_code       text,
  sold_at          timestamp without time zone NOT NULL,
  PRIMARY KEY (store_code, receipt_no, line_no)
);
ALTER TABLE sale_lines REPLICA IDENTITY FULL;
