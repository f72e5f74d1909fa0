ALTER TABLE runtime_records DROP COLUMN docker_host;
