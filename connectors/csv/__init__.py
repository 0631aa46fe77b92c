"""CSV exports as a directory: one file is a complete listing of who belongs and in which teams."""

from connectors.csv.parse import ParsedFile, RowError, parse, parse_bytes

__all__ = ["ParsedFile", "RowError", "parse", "parse_bytes"]
