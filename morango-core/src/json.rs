//! Record JSON written the way Python's `json.dumps` writes it.
