"""The SCIM 2.0 face (RFC 7643/7644): identity providers provision the directory."""
