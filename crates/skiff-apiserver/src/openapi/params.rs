//! The query and path parameters of API operations, with upstream's names,
//! types and (abridged) descriptions.
//!
//! Must not: decide which operation takes which parameter beyond the groups
//! below; [`super::paths`] composes them.

/// One operation parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    /// `query` or `path`.
    pub location: &'static str,
    /// `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub description: &'static str,
    /// Upstream marks write-time parameters (`dryRun`, `fieldManager`, ...) unique.
    pub unique: bool,
}

const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        location: "query",
        ty,
        description,
        unique: true,
    }
}

/// The `{name}` path parameter.
pub(crate) const NAME: Param = Param {
    name: "name",
    location: "path",
    ty: "string",
    description: "name of the object",
    unique: true,
};
/// The `{namespace}` path parameter.
pub(crate) const NAMESPACE: Param = Param {
    name: "namespace",
    location: "path",
    ty: "string",
    description: "object name and auth scope, such as for teams and projects",
    unique: true,
};
/// `pretty`, taken by every path.
pub(crate) const PRETTY: Param = query(
    "pretty",
    "string",
    "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a \
     browser or command-line HTTP tool (curl and wget).",
);

const DRY_RUN: Param = query(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun \
     directive will result in an error response and no further processing of the request. Valid values are: \
     - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = query(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes. The value must \
     be less than or 128 characters long, and only contain printable characters, as defined by \
     https://golang.org/pkg/unicode/#IsPrint.",
);
const FIELD_VALIDATION: Param = query(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing \
     unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are \
     silently dropped from the object, and will ignore all but the last duplicate field that the decoder \
     encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the \
     standard warning response header for each unknown field that is dropped from the object, and for each \
     duplicate field that is encountered. The request will still succeed if there are no other errors, and \
     will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will \
     fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if \
     any duplicate fields are present. The error returned from the server will contain all unknown and \
     duplicate fields encountered.",
);
const FORCE: Param = query(
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by \
     other people. Force flag must be unset for non-apply patch requests.",
);

/// Parameters of POST and PUT.
pub(crate) const WRITE: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
/// Parameters of PATCH.
pub(crate) const PATCH: &[Param] = &[DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];

const ALLOW_WATCH_BOOKMARKS: Param = query(
    "allowWatchBookmarks",
    "boolean",
    "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks \
     may ignore this flag and bookmarks are sent at the server's discretion.",
);
const CONTINUE: Param = query(
    "continue",
    "string",
    "The continue option should be set when retrieving more results from the server. Since this value is \
     server defined, clients may only use the continue value from a previous query result with identical \
     query parameters (except for the value of continue).",
);
const FIELD_SELECTOR: Param = query(
    "fieldSelector",
    "string",
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
);
const LABEL_SELECTOR: Param = query(
    "labelSelector",
    "string",
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
);
const LIMIT: Param = query(
    "limit",
    "integer",
    "limit is a maximum number of responses to return for a list call. If more items exist, the server will \
     set the `continue` field on the list metadata to a value that can be used with the same initial query \
     to retrieve the next set of results.",
);
const RESOURCE_VERSION: Param = query(
    "resourceVersion",
    "string",
    "resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to \
     unset",
);
const RESOURCE_VERSION_MATCH: Param = query(
    "resourceVersionMatch",
    "string",
    "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended \
     that resourceVersionMatch be set for list calls where resourceVersion is set. Defaults to unset",
);
const SEND_INITIAL_EVENTS: Param = query(
    "sendInitialEvents",
    "boolean",
    "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will \
     begin with synthetic events to produce the current state of objects in the collection, followed by a \
     \"Bookmark\" event annotated with \"k8s.io/initial-events-end\": \"true\".",
);
const TIMEOUT_SECONDS: Param = query(
    "timeoutSeconds",
    "integer",
    "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or \
     inactivity.",
);
const WATCH: Param = query(
    "watch",
    "boolean",
    "Watch for changes to the described resources and return them as a stream of add, update, and remove \
     notifications. Specify resourceVersion.",
);

/// Parameters of list (and watch through `?watch=true`).
pub(crate) const LIST: &[Param] = &[
    ALLOW_WATCH_BOOKMARKS,
    CONTINUE,
    FIELD_SELECTOR,
    LABEL_SELECTOR,
    LIMIT,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
    WATCH,
];

const GRACE_PERIOD_SECONDS: Param = query(
    "gracePeriodSeconds",
    "integer",
    "The duration in seconds before the object should be deleted. Value must be non-negative integer. The \
     value zero indicates delete immediately. If this value is nil, the default grace period for the \
     specified type will be used. Defaults to a per object value if not specified. zero means delete \
     immediately.",
);
const IGNORE_STORE_READ_ERROR: Param = query(
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "boolean",
    "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow \
     fails with a corrupt object error.",
);
const ORPHAN_DEPENDENTS: Param = query(
    "orphanDependents",
    "boolean",
    "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the \
     dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the \
     object's finalizers list. Either this field or PropagationPolicy may be set, but not both.",
);
const PROPAGATION_POLICY: Param = query(
    "propagationPolicy",
    "string",
    "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, \
     but not both. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
);

/// Parameters of DELETE on one object.
pub(crate) const DELETE: &[Param] = &[
    DRY_RUN,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
];

/// Parameters of deletecollection.
pub(crate) const DELETE_COLLECTION: &[Param] = &[
    CONTINUE,
    DRY_RUN,
    FIELD_SELECTOR,
    GRACE_PERIOD_SECONDS,
    IGNORE_STORE_READ_ERROR,
    LABEL_SELECTOR,
    LIMIT,
    ORPHAN_DEPENDENTS,
    PROPAGATION_POLICY,
    RESOURCE_VERSION,
    RESOURCE_VERSION_MATCH,
    SEND_INITIAL_EVENTS,
    TIMEOUT_SECONDS,
];

const CONTAINER: Param = query(
    "container",
    "string",
    "The container for which to stream logs or run a command.",
);
const STDIN: Param = query(
    "stdin",
    "boolean",
    "Redirect the standard input stream of the pod for this call.",
);
const STDOUT: Param = query(
    "stdout",
    "boolean",
    "Redirect the standard output stream of the pod for this call.",
);
const STDERR: Param = query(
    "stderr",
    "boolean",
    "Redirect the standard error stream of the pod for this call.",
);
const TTY: Param = query(
    "tty",
    "boolean",
    "TTY if true indicates that a tty will be allocated for the call.",
);

/// Parameters of `pods/log`.
pub(crate) const LOG: &[Param] = &[
    CONTAINER,
    query(
        "follow",
        "boolean",
        "Follow the log stream of the pod. Defaults to false.",
    ),
    query(
        "insecureSkipTLSVerifyBackend",
        "boolean",
        "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the \
         serving certificate of the backend it is connecting to.",
    ),
    query(
        "limitBytes",
        "integer",
        "If set, the number of bytes to read from the server before terminating the log output.",
    ),
    query(
        "previous",
        "boolean",
        "Return previous terminated container logs. Defaults to false.",
    ),
    query(
        "sinceSeconds",
        "integer",
        "A relative time in seconds before the current time from which to show logs.",
    ),
    query(
        "stream",
        "string",
        "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\".",
    ),
    query(
        "tailLines",
        "integer",
        "If set, the number of lines from the end of the logs to show.",
    ),
    query(
        "timestamps",
        "boolean",
        "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.",
    ),
];

/// Parameters of `pods/exec`.
pub(crate) const EXEC: &[Param] = &[
    query(
        "command",
        "string",
        "Command is the remote command to execute. argv array. Not executed within a shell.",
    ),
    CONTAINER,
    STDERR,
    STDIN,
    STDOUT,
    TTY,
];

/// Parameters of `pods/attach`.
pub(crate) const ATTACH: &[Param] = &[CONTAINER, STDERR, STDIN, STDOUT, TTY];

/// Parameters of `pods/portforward`.
pub(crate) const PORT_FORWARD: &[Param] = &[query(
    "ports",
    "integer",
    "List of ports to forward Required when using WebSockets",
)];

/// Parameters of `*/proxy`.
pub(crate) const PROXY: &[Param] = &[query(
    "path",
    "string",
    "Path is the URL path to use for the current proxy request.",
)];
