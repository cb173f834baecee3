//! Label key and value validation with upstream's exact messages
//! (`IsQualifiedName`, `IsValidLabelValue`), as the selector parser needs
//! them. The checks themselves live once, in [`crate::validation::names`];
//! the parser turns a failure into an `Invalid value` detail.

pub use crate::validation::names::{
    label_value as label_value_errors, qualified_name as qualified_name_errors,
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_keys_and_values() {
        for k in ["app", "app.kubernetes.io/name", "a-b_c.d", "x/y", "A1"] {
            assert!(qualified_name_errors(k).is_empty(), "{k}");
        }
        for v in ["", "web", "v1.2_3-x"] {
            assert!(label_value_errors(v).is_empty(), "{v}");
        }
    }

    #[test]
    fn rejects_with_upstream_messages() {
        assert_eq!(
            qualified_name_errors("-a"),
            vec![
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert!(qualified_name_errors("Example.com/x")[0].starts_with("prefix part a lowercase RFC 1123"));
        assert!(qualified_name_errors("a/b/c")[0].starts_with("a qualified name must consist"));
        assert_eq!(
            qualified_name_errors(&"a".repeat(64))[0],
            "name part must be no more than 63 characters"
        );
        assert!(label_value_errors("a b")[0].starts_with("a valid label must be an empty string"));
        assert_eq!(
            label_value_errors(&"v".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }
}
