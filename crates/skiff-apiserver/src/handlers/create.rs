//! POST on a collection: create one object.

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;

use super::write::{Warnings, check_body, create_object, respond_object};
use super::{Ctx, read_object};
use crate::errors::ApiResult;

/// Creates the object in the body; 201 with the stored object.
pub(crate) async fn create(ctx: Ctx, body: Body) -> ApiResult<Response> {
    let obj = read_object(&ctx, body).await?;
    let mut warnings = Warnings::new();
    let obj = check_body(&ctx, obj, &mut warnings)?;
    let created = create_object(&ctx, obj).await?;
    Ok(respond_object(&ctx, StatusCode::CREATED, &created, &warnings))
}
