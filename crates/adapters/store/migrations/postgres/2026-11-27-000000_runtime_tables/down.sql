DROP TABLE runtime_snapshots;
DROP TABLE game_projections;
DROP TRIGGER runtime_records_forward_only ON runtime_records;
DROP FUNCTION runtime_records_forward_only();
DROP TABLE runtime_records;
