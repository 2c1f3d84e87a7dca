"""The ground floor: where everything glutewake keeps lives, and the only writers of it.

- :mod:`~glutewake.store.datadir`: the data directory and its layout;
- :mod:`~glutewake.store.storage`: the store holding ``spool/`` and ``samples/`` (a local folder or
  an fsspec URL);
- :mod:`~glutewake.store.spool`: raw GATT records, the record of truth (journal and segments);
- :mod:`~glutewake.store.samples`: decoded samples as partitioned Parquet;
- :mod:`~glutewake.store.catalog`: the DuckDB catalog: schema, migrations, connections (read
  ones confined), the one-writer lock;
- :mod:`~glutewake.store.user_query`: SQL someone typed: only queries run, Ctrl-C stops them;
- :mod:`~glutewake.store.ids`: the participant-ID rule and one-to-one device-id folder names;
- :mod:`~glutewake.store.private`: owner-only folders and files, whatever the umask;
- :mod:`~glutewake.store.bookkeeping`: participants, phases, symptoms, devices, imported files.

Everything else may use this package; it uses nothing above it (only ``devices``' record types).
"""
