-- The configuration generation: one store-wide counter, incremented in the transaction of every
-- destination change (create, change, pause, resume, delete). Each destination row carries the
-- generation of its last change, so a node that has applied generation g reads exactly the rows
-- changed after it (generation > g), with no clock involved. Rows that exist before this
-- migration get generation 1, the counter's start.
CREATE TABLE config_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO config_generation (id, generation) VALUES (1, 1);
ALTER TABLE destinations ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
CREATE INDEX destinations_generation ON destinations (generation);
DROP INDEX destinations_updated_at;
