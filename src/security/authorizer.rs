//! Kafka's ACL authorizer (ZooKeeper mode's `AclAuthorizer`): decides whether a principal
//! from a host may perform an operation on a resource, from a cache of every ACL. The cache
//! is filled and kept current by the broker from the metadata store (`/kafka-acl` in
//! ZooKeeper); nothing here reads storage.
//!
//! The rules, as Kafka's: super users may do everything; a resource with no matching ACL at
//! all is allowed only with `allow.everyone.if.no.acl.found`; otherwise a matching DENY wins,
//! then a matching ALLOW is needed. An ACL matches by principal (or `User:*`), host (or `*`)
//! and operation (or ALL); READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
//! DESCRIBE_CONFIGS (for ALLOW only).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;

use super::acl::{
    AccessControlEntry, AclBindingFilter, AclOperation, AclPermissionType, PatternType,
    ResourcePattern, ResourceType, WILDCARD_HOST, WILDCARD_PRINCIPAL, WILDCARD_RESOURCE,
};
use super::KafkaPrincipal;
use crate::config::AuthorizerSettings;

/// Every ACL, by the resource pattern it applies to.
pub type AclTable = BTreeMap<ResourcePattern, BTreeSet<AccessControlEntry>>;

/// The cache, indexed for `authorize`: by resource type and pattern type, each name's entries,
/// so that a check looks up its name, `*` and each prefix of its name without building a key.
#[derive(Default)]
struct AclIndex {
    by_kind: HashMap<(ResourceType, PatternType), BTreeMap<String, BTreeSet<AccessControlEntry>>>,
}

impl AclIndex {
    fn set(&mut self, pattern: ResourcePattern, entries: BTreeSet<AccessControlEntry>) {
        let kind = (pattern.resource_type, pattern.pattern_type);
        if entries.is_empty() {
            if let Some(names) = self.by_kind.get_mut(&kind) {
                names.remove(&pattern.name);
                if names.is_empty() {
                    self.by_kind.remove(&kind);
                }
            }
        } else {
            self.by_kind
                .entry(kind)
                .or_default()
                .insert(pattern.name, entries);
        }
    }

    fn get(
        &self,
        resource_type: ResourceType,
        pattern_type: PatternType,
        name: &str,
    ) -> Option<&BTreeSet<AccessControlEntry>> {
        self.by_kind.get(&(resource_type, pattern_type))?.get(name)
    }

    fn iter(&self) -> impl Iterator<Item = (ResourcePattern, &BTreeSet<AccessControlEntry>)> {
        self.by_kind.iter().flat_map(|(kind, names)| {
            names.iter().map(move |(name, entries)| {
                (
                    ResourcePattern {
                        resource_type: kind.0,
                        pattern_type: kind.1,
                        name: name.clone(),
                    },
                    entries,
                )
            })
        })
    }
}

/// Whether `text` (`User:alice`, as an ACL or `super.users` names a principal) is `principal`.
fn names_principal(text: &str, principal: &KafkaPrincipal) -> bool {
    text.strip_prefix(principal.principal_type.as_str())
        .and_then(|rest| rest.strip_prefix(':'))
        == Some(principal.name.as_str())
}

pub struct AclAuthorizer {
    super_users: Vec<String>,
    allow_everyone_if_no_acl_found: bool,
    /// Lock order: taken alone; held only to read or replace entries, never across I/O.
    acls: RwLock<AclIndex>,
}

impl AclAuthorizer {
    pub fn new(settings: AuthorizerSettings) -> Self {
        AclAuthorizer {
            super_users: settings.super_users,
            allow_everyone_if_no_acl_found: settings.allow_everyone_if_no_acl_found,
            acls: RwLock::new(AclIndex::default()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, AclIndex> {
        self.acls.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, AclIndex> {
        self.acls.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the whole cache (the first load, or a reload).
    pub fn replace_all(&self, table: AclTable) {
        let mut index = AclIndex::default();
        for (pattern, entries) in table {
            index.set(pattern, entries);
        }
        *self.write() = index;
    }

    /// Sets one resource's ACLs (none: the resource has no ACLs any more).
    pub fn set_resource(&self, pattern: ResourcePattern, entries: BTreeSet<AccessControlEntry>) {
        self.write().set(pattern, entries);
    }

    /// The patterns in the cache.
    pub fn patterns(&self) -> Vec<ResourcePattern> {
        self.read().iter().map(|(pattern, _)| pattern).collect()
    }

    pub fn is_super_user(&self, principal: &KafkaPrincipal) -> bool {
        self.super_users
            .iter()
            .any(|s| names_principal(s, principal))
    }

    /// The ACLs a DescribeAcls filter selects.
    pub fn acls(&self, filter: &AclBindingFilter) -> Vec<(ResourcePattern, AccessControlEntry)> {
        let index = self.read();
        let mut found = Vec::new();
        for (pattern, entries) in index.iter() {
            for entry in entries.iter().filter(|e| filter.matches(&pattern, e)) {
                found.push((pattern.clone(), entry.clone()));
            }
        }
        found
    }

    /// Whether `principal` from `host` (an address, `127.0.0.1`) may do `operation` on the
    /// resource `resource_type`/`name`.
    pub fn authorize(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let index = self.read();
        let matching = matching_acls(&index, resource_type, name);
        if matching.is_empty() {
            return self.allow_everyone_if_no_acl_found;
        }
        let applies = |entry: &AccessControlEntry, permission, op: AclOperation| {
            entry.permission_type == permission
                && (names_principal(&entry.principal, principal)
                    || entry.principal == WILDCARD_PRINCIPAL)
                && (entry.operation == op || entry.operation == AclOperation::All)
                && (entry.host == host || entry.host == WILDCARD_HOST)
        };
        if matching
            .iter()
            .any(|e| applies(e, AclPermissionType::Deny, operation))
        {
            return false;
        }
        implied_by(operation).iter().any(|op| {
            matching
                .iter()
                .any(|e| applies(e, AclPermissionType::Allow, *op))
        })
    }

    /// Whether `principal` may do `operation` on at least one resource of the type (Kafka's
    /// `authorizeByResourceType`: an idempotent producer without IDEMPOTENT_WRITE on the
    /// cluster needs WRITE on some topic). An ALLOW counts unless a DENY for the same
    /// principal covers it: a literal deny of the same name or `*`, or a deny prefix.
    pub fn authorize_by_resource_type(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if self.is_super_user(principal) {
            return true;
        }
        let index = self.read();
        let names = |permission, pattern_type| -> BTreeSet<&str> {
            let Some(by_name) = index.by_kind.get(&(resource_type, pattern_type)) else {
                return BTreeSet::new();
            };
            by_name
                .iter()
                .filter(|(_, entries)| {
                    entries.iter().any(|e| {
                        e.permission_type == permission
                            && (names_principal(&e.principal, principal)
                                || e.principal == WILDCARD_PRINCIPAL)
                            && (e.host == host || e.host == WILDCARD_HOST)
                            && (e.operation == operation || e.operation == AclOperation::All)
                    })
                })
                .map(|(name, _)| name.as_str())
                .collect()
        };
        let deny_literals = names(AclPermissionType::Deny, PatternType::Literal);
        if deny_literals.contains(WILDCARD_RESOURCE) {
            return false;
        }
        if self.allow_everyone_if_no_acl_found {
            return true;
        }
        let deny_prefixes = names(AclPermissionType::Deny, PatternType::Prefixed);
        let denied_by_prefix = |name: &str| {
            name.char_indices()
                .map(|(i, c)| &name[..i + c.len_utf8()])
                .any(|prefix| deny_prefixes.contains(prefix))
        };
        let allow_prefixes = names(AclPermissionType::Allow, PatternType::Prefixed);
        let allow_literals = names(AclPermissionType::Allow, PatternType::Literal);
        allow_prefixes.iter().any(|p| !denied_by_prefix(p))
            || allow_literals.iter().any(|l| {
                *l == WILDCARD_RESOURCE || (!deny_literals.contains(l) && !denied_by_prefix(l))
            })
    }

    /// The operations allowed on a resource, as an `authorized_operations` bit field (bit
    /// `code` set for each allowed operation the resource type supports).
    pub fn authorized_operations(
        &self,
        principal: &KafkaPrincipal,
        host: &str,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        operations_bit_field(
            resource_type
                .supported_operations()
                .iter()
                .copied()
                .filter(|op| self.authorize(principal, host, *op, resource_type, name)),
        )
    }
}

/// The bit field of `authorized_operations`.
pub fn operations_bit_field(operations: impl IntoIterator<Item = AclOperation>) -> i32 {
    operations
        .into_iter()
        .fold(0, |bits, op| bits | (1 << op.code()))
}

/// The operations whose ALLOW grants `operation`.
fn implied_by(operation: AclOperation) -> &'static [AclOperation] {
    use AclOperation as O;
    match operation {
        O::Describe => &[O::Describe, O::Read, O::Write, O::Delete, O::Alter],
        O::DescribeConfigs => &[O::DescribeConfigs, O::AlterConfigs],
        O::Read => &[O::Read],
        O::Write => &[O::Write],
        O::Create => &[O::Create],
        O::Delete => &[O::Delete],
        O::Alter => &[O::Alter],
        O::ClusterAction => &[O::ClusterAction],
        O::AlterConfigs => &[O::AlterConfigs],
        O::IdempotentWrite => &[O::IdempotentWrite],
        O::CreateTokens => &[O::CreateTokens],
        O::DescribeTokens => &[O::DescribeTokens],
        O::All => &[O::All],
        O::Any => &[],
    }
}

/// The ACLs that apply to a named resource: its literal name, the literal `*`, and every
/// prefix of its name.
fn matching_acls<'t>(
    index: &'t AclIndex,
    resource_type: ResourceType,
    name: &str,
) -> Vec<&'t AccessControlEntry> {
    let mut out = Vec::new();
    let mut add = |pattern_type, n: &str| {
        if let Some(entries) = index.get(resource_type, pattern_type, n) {
            out.extend(entries.iter());
        }
    };
    add(PatternType::Literal, name);
    if name != WILDCARD_RESOURCE {
        add(PatternType::Literal, WILDCARD_RESOURCE);
    }
    if index
        .by_kind
        .contains_key(&(resource_type, PatternType::Prefixed))
    {
        for (i, c) in name.char_indices() {
            add(PatternType::Prefixed, &name[..i + c.len_utf8()]);
        }
    }
    out
}

/// One request's view of the authorizer: who asked, from where. Without an authorizer
/// (`authorizer.class.name` unset) everything is allowed, as in Kafka.
#[derive(Clone, Copy)]
pub struct RequestAuthorizer<'a> {
    pub authorizer: Option<&'a AclAuthorizer>,
    pub principal: &'a KafkaPrincipal,
    /// The client's address, `127.0.0.1`.
    pub host: &'a str,
}

impl RequestAuthorizer<'_> {
    pub fn allows(&self, operation: AclOperation, resource_type: ResourceType, name: &str) -> bool {
        self.authorizer
            .is_none_or(|a| a.authorize(self.principal, self.host, operation, resource_type, name))
    }

    pub fn allows_cluster(&self, operation: AclOperation) -> bool {
        self.allows(operation, ResourceType::Cluster, super::acl::CLUSTER_NAME)
    }

    pub fn allows_topic(&self, operation: AclOperation, topic: &str) -> bool {
        self.allows(operation, ResourceType::Topic, topic)
    }

    pub fn allows_group(&self, operation: AclOperation, group: &str) -> bool {
        self.allows(operation, ResourceType::Group, group)
    }

    pub fn allows_any_of_type(&self, operation: AclOperation, resource_type: ResourceType) -> bool {
        self.authorizer.is_none_or(|a| {
            a.authorize_by_resource_type(self.principal, self.host, operation, resource_type)
        })
    }

    /// The `authorized_operations` field of a resource.
    pub fn authorized_operations(&self, resource_type: ResourceType, name: &str) -> i32 {
        match self.authorizer {
            Some(a) => a.authorized_operations(self.principal, self.host, resource_type, name),
            None => operations_bit_field(resource_type.supported_operations().iter().copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(principal: &str, op: AclOperation, perm: AclPermissionType) -> AccessControlEntry {
        AccessControlEntry {
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission_type: perm,
        }
    }

    fn authorizer(acls: Vec<(ResourcePattern, AccessControlEntry)>) -> AclAuthorizer {
        let a = AclAuthorizer::new(AuthorizerSettings {
            super_users: vec!["User:admin".into()],
            allow_everyone_if_no_acl_found: false,
        });
        let mut table = AclTable::new();
        for (p, e) in acls {
            table.entry(p).or_default().insert(e);
        }
        a.replace_all(table);
        a
    }

    fn topic(p: PatternType, name: &str) -> ResourcePattern {
        ResourcePattern {
            resource_type: ResourceType::Topic,
            pattern_type: p,
            name: name.into(),
        }
    }

    #[test]
    fn kafkas_rules() {
        use AclOperation as O;
        use AclPermissionType::{Allow, Deny};
        let a = authorizer(vec![
            (
                topic(PatternType::Literal, "t"),
                entry("User:alice", O::Read, Allow),
            ),
            (
                topic(PatternType::Prefixed, "pre-"),
                entry("User:bob", O::Read, Allow),
            ),
            (
                topic(PatternType::Literal, "d"),
                entry("User:*", O::All, Allow),
            ),
            (
                topic(PatternType::Literal, "d"),
                entry("User:bob", O::Read, Deny),
            ),
        ]);
        let alice = KafkaPrincipal::user("alice");
        let bob = KafkaPrincipal::user("bob");
        let admin = KafkaPrincipal::user("admin");
        let h = "127.0.0.1";
        assert!(a.authorize(&alice, h, O::Read, ResourceType::Topic, "t"));
        // READ implies DESCRIBE, not WRITE.
        assert!(a.authorize(&alice, h, O::Describe, ResourceType::Topic, "t"));
        assert!(!a.authorize(&alice, h, O::Write, ResourceType::Topic, "t"));
        assert!(!a.authorize(&bob, h, O::Read, ResourceType::Topic, "t"));
        // Prefixed.
        assert!(a.authorize(&bob, h, O::Read, ResourceType::Topic, "pre-1"));
        assert!(!a.authorize(&bob, h, O::Read, ResourceType::Topic, "other-1"));
        // Deny over allow, for the denied operation only.
        assert!(a.authorize(&alice, h, O::Read, ResourceType::Topic, "d"));
        assert!(!a.authorize(&bob, h, O::Read, ResourceType::Topic, "d"));
        assert!(a.authorize(&bob, h, O::Describe, ResourceType::Topic, "d"));
        // No ACL at all: denied, except to super users.
        assert!(!a.authorize(&alice, h, O::Read, ResourceType::Topic, "none"));
        assert!(a.authorize(&admin, h, O::Read, ResourceType::Topic, "none"));
        // Bit field: alice on t has READ (3) and DESCRIBE (8).
        assert_eq!(
            a.authorized_operations(&alice, h, ResourceType::Topic, "t"),
            (1 << 3) | (1 << 8)
        );
        // By type: bob may read some topic (pre-*), everyone may write d; no group is
        // readable by anyone but a super user.
        assert!(a.authorize_by_resource_type(&bob, h, O::Read, ResourceType::Topic));
        assert!(a.authorize_by_resource_type(&alice, h, O::Write, ResourceType::Topic));
        assert!(!a.authorize_by_resource_type(&alice, h, O::Read, ResourceType::Group));
        assert!(a.authorize_by_resource_type(&admin, h, O::Read, ResourceType::Group));
    }

    #[test]
    fn hosts_and_allow_everyone() {
        use AclOperation as O;
        let a = AclAuthorizer::new(AuthorizerSettings {
            super_users: vec![],
            allow_everyone_if_no_acl_found: true,
        });
        let mut e = entry("User:alice", O::Write, AclPermissionType::Allow);
        e.host = "10.0.0.1".into();
        a.set_resource(topic(PatternType::Literal, "t"), [e].into_iter().collect());
        let alice = KafkaPrincipal::user("alice");
        assert!(a.authorize(&alice, "10.0.0.1", O::Write, ResourceType::Topic, "t"));
        assert!(!a.authorize(&alice, "127.0.0.1", O::Write, ResourceType::Topic, "t"));
        // A resource without ACLs is open to all.
        assert!(a.authorize(&alice, "127.0.0.1", O::Write, ResourceType::Topic, "u"));
        a.set_resource(topic(PatternType::Literal, "t"), BTreeSet::new());
        assert!(a.patterns().is_empty());
    }
}
