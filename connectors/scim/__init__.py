"""SCIM 2.0 (RFC 7643/7644) as pure translation: schemas, filters, PATCH, documents to directory records.

The HTTP side lives in api/scim; nothing here touches the store or the network.
"""
