-- Room on each page so that claiming a delivery (claimed_until, not indexed) is a
-- heap-only update that writes no index entries.
ALTER TABLE deliveries SET (fillfactor = 70);
