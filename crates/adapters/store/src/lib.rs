//! Store adapter of galaxy-runtime on diesel-async: PostgreSQL and SQLite.
