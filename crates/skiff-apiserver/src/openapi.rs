//! OpenAPI v2 (`/openapi/v2`) and v3 (`/openapi/v3`, `/openapi/v3/<path>`)
//! documents generated from k8s-openapi's schemas. To be written.
