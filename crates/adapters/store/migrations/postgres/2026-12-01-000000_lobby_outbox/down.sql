DROP TABLE runtime_events;
