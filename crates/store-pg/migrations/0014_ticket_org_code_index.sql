-- Issue 16 (an admin with 100,000 tickets): the console's ticket list and
-- its CSV export page through one org's tickets in code order
-- (`orq = $1 AND ticket_code > $5 ORDER BY ticket_code`, the column's "C"
-- collation). The primary key spans every org, so a small org paged along
-- it reads the other orgs' rows; this index answers each page as one range
-- of the org's codes.
CREATE INDEX idx_tickets_orq_code ON tickets (orq, ticket_code);
