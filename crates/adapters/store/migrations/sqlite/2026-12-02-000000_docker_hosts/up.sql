-- Several Docker hosts (CONTRACT §6): the host a record's container runs on. Rows written
-- before hosts existed get '', which stands for the first configured host.
ALTER TABLE runtime_records ADD COLUMN docker_host TEXT NOT NULL DEFAULT '';
