//! Authentication: who a request is from (client certificate CN/O, bearer
//! token). To be written.

/// The authenticated user of a request, inserted as a request extension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}
