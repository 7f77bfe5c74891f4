-- Issue 16 (console tickets): an admin searches tickets by order id; without
-- this index that search reads every ticket of the org.
CREATE INDEX idx_tickets_order ON tickets (orq, order_id);
