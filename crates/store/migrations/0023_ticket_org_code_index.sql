-- Issue 16 (an admin with 100,000 tickets): the console's ticket list and
-- its CSV export page through one org's tickets in code order
-- (`orq = ? AND ticket_code > ? ORDER BY ticket_code`). The primary key
-- (ticket_code) spans every org, so a small org paged along it reads the
-- other orgs' rows; the org index alone sorts the whole org per page. This
-- index answers each page as one range of the org's codes.
CREATE INDEX idx_tickets_orq_code ON tickets (orq, ticket_code);
