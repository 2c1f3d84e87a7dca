"""BLE collection, the raw spool and file importers: all I/O of incoming data."""
