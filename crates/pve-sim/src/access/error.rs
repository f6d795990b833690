//! Errors of the access-control engine. The messages are the texts PVE 8 dies with (without the
//! trailing newline), so the HTTP layer can put them on the wire as they are.

/// An access-control operation that PVE would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// A `user.cfg` text that cannot be read at all.
    #[error("unable to parse user.cfg: {0}")]
    Parse(String),
    /// A user id that is not `name@realm`.
    #[error("value '{0}' does not look like a valid user name")]
    InvalidUserid(String),
    /// A realm other than the ones the simulator has (`pam`, `pve`).
    #[error("domain '{0}' does not exist")]
    NoSuchRealm(String),
    /// An unknown user.
    #[error("no such user ('{0}')")]
    NoSuchUser(String),
    /// Creating a user that exists.
    #[error("user '{0}' already exists")]
    UserExists(String),
    /// A disabled user tried to authenticate.
    #[error("user '{0}' is disabled")]
    UserDisabled(String),
    /// An expired user tried to authenticate.
    #[error("user '{0}' access expired")]
    UserExpired(String),
    /// A wrong password (or an unknown user, for the login call).
    #[error("authentication failure")]
    AuthenticationFailure,
    /// A token id that is not `user@realm!name`, or a token name that is not valid.
    #[error("value '{0}' does not look like a valid token ID")]
    InvalidTokenid(String),
    /// An unknown token.
    #[error("no such token '{token}' for user '{user}'")]
    NoSuchToken {
        /// The owning user id.
        user: String,
        /// The token name.
        token: String,
    },
    /// Creating a token that exists.
    #[error("Token already exists.")]
    TokenExists,
    /// An expired token was used.
    #[error("token '{0}' access expired")]
    TokenExpired(String),
    /// A wrong token secret.
    #[error("invalid token value!")]
    InvalidTokenValue,
    /// A group name outside `[A-Za-z0-9._-]+`.
    #[error("invalid group name '{0}'")]
    InvalidGroupname(String),
    /// An unknown group.
    #[error("group '{0}' does not exist")]
    NoSuchGroup(String),
    /// Creating a group that exists.
    #[error("group '{0}' already exists")]
    GroupExists(String),
    /// A role name outside `[A-Za-z0-9._-]+`.
    #[error("invalid role name '{0}'")]
    InvalidRolename(String),
    /// An unknown role.
    #[error("role '{0}' does not exist")]
    NoSuchRole(String),
    /// Creating a role that exists (built-in roles exist too).
    #[error("role '{0}' already exists")]
    RoleExists(String),
    /// Changing a built-in role.
    #[error("auto-generated role '{0}' cannot be modified")]
    BuiltinRoleModify(String),
    /// Deleting a built-in role.
    #[error("auto-generated role '{0}' cannot be deleted")]
    BuiltinRoleDelete(String),
    /// A privilege that PVE 8 does not have.
    #[error("invalid privilege '{0}'")]
    InvalidPrivilege(String),
    /// An ACL path that `check_path` refuses.
    #[error("invalid ACL path '{0}'")]
    InvalidAclPath(String),
    /// An ACL change that names no user, group or token.
    #[error("either 'users', 'groups' or 'tokens' is required")]
    NoAclMembers,
    /// A pool name outside the `pve-poolid` rules.
    #[error("invalid pool name '{0}'")]
    InvalidPoolname(String),
    /// An unknown pool.
    #[error("pool '{0}' does not exist")]
    NoSuchPool(String),
    /// Creating a pool that exists.
    #[error("pool '{0}' already exists")]
    PoolExists(String),
    /// Adding a VM that is already in another pool.
    #[error("VM {0} is already a pool member")]
    VmInPool(u32),
    /// A storage id that is not valid.
    #[error("invalid storage ID '{0}'")]
    InvalidStorageId(String),
    /// Creating a role whose name starts with the reserved `PVE` prefix.
    #[error("cannot use role ID starting with the (case-insensitive) 'PVE' namespace")]
    ReservedRolePrefix,
    /// An ACL names a user that does not exist (the ACL handler's wording).
    #[error("user '{0}' does not exist")]
    AclUserMissing(String),
    /// A caller without `Permissions.Modify` on the path grants or revokes a role whose
    /// privileges it does not hold there (with propagation, when the grant propagates).
    #[error("{0}")]
    AclRoleDenied(String),
    /// A user create or update names a group that does not exist (the user handlers' wording).
    #[error("no such group '{0}'")]
    UnknownGroup(String),
    /// Deleting a pool that still has members: the pool and what it contains (`VM 100`,
    /// `storage 'local'`, `child pool 'a/b'`).
    #[error("pool '{0}' is not empty (contains {1})")]
    PoolNotEmpty(String, String),
    /// Creating a nested pool whose parent does not exist.
    #[error("parent '{parent}' of pool '{pool}' does not exist")]
    NoSuchParentPool {
        /// The missing parent.
        parent: String,
        /// The pool to create.
        pool: String,
    },
    /// Adding a VM that belongs to another pool without `allow-move`.
    #[error("VM {vmid} belongs already to pool '{pool}' and 'allow-move' is not set")]
    VmInOtherPool {
        /// The VM.
        vmid: u32,
        /// Its current pool.
        pool: String,
    },
    /// Removing a VM that is not in the pool.
    #[error("VM {0} is not a pool member")]
    VmNotInPool(u32),
    /// Adding a storage that is already in the pool.
    #[error("Storage '{0}' is already a pool member")]
    StorageInPool(String),
    /// Removing a storage that is not in the pool.
    #[error("Storage '{0}' is not a pool member")]
    StorageNotInPool(String),
}
