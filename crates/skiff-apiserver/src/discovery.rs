//! API discovery: `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`
//! (legacy and aggregated v2 forms) and `/version`. To be written.
