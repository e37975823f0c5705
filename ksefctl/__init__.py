"""ksefctl — declarative management of KSeF tokens, with secrets kept in Vault."""

__version__ = "0.1.0"
