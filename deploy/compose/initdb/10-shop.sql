-- The demo's application database, where the simulated model logs predictions and labels.
-- Vigil's own store is the `vigil` database created by the postgres image.
CREATE DATABASE shop OWNER vigil;
