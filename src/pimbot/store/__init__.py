"""SQLAlchemy 2 async tables, the database handle and Alembic migrations."""
