-- The queue churns (every delivery is added and removed): autovacuum takes it as
-- soon as a thousand rows are dead, whatever its size (the sender also vacuums it
-- every few seconds while busy).
ALTER TABLE queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                       autovacuum_vacuum_cost_delay = 0);
