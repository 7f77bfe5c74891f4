-- The desk looks tickets up by e-mail or phone (kiosk "Lookup" screen).
CREATE INDEX idx_tickets_customer_email ON tickets (customer_email COLLATE NOCASE);
CREATE INDEX idx_tickets_customer_phone ON tickets (customer_phone);
CREATE INDEX idx_tickets_purchase_email ON tickets (purchase_email COLLATE NOCASE);
