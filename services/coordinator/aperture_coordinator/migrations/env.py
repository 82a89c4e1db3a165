"""Alembic's entry point: runs the migrations on the database named by `upgrade_database`."""

from alembic import context
from aperture_coordinator.db import create_database_engine
from aperture_coordinator.models import Base

config = context.config
database_url: str = config.attributes["database_url"]
# The same engine set-up as the service (SQLite pragmas and locking included).
engine = create_database_engine(database_url)
try:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            compare_type=True,
            # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode there.
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
finally:
    engine.dispose()
